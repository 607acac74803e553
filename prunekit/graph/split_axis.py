"""Which axis of a reshape that splits a prunable dim becomes the pruned one (heads or head
dims), and coupling of equal head splits when head dims are pruned."""

from __future__ import annotations

from typing import Any

from torch import nn

from .context import SplitSite, TraceContext

__all__ = ["choose_axis", "couple_same_split"]


def choose_axis(ctx: TraceContext, sizes: list[int], varying: list[int]) -> int:
    """Pick which of several varying split axes becomes the pruned one.

    1. An int attribute of the current module that counts heads (name mentions "head" but
       not "dim"/"size", e.g. ``num_heads``) and equals an axis size marks that axis.
    2. A head-size attribute (``head_dim``, ``attention_head_size``) marks its axis as fixed:
       the first other varying axis (the heads) is pruned.
    3. Otherwise an axis whose size equals another int attribute (``groups``) is a fixed
       count, and the last free axis is pruned; by default the last varying axis, so leading
       counts that code often hard-codes (``channel_shuffle(x, 2)``) stay valid.
    """
    module: nn.Module | None = ctx.module
    attrs: dict[str, int] = {}
    if module is not None:
        attrs = {
            k.lower(): v
            for k, v in vars(module).items()
            if isinstance(v, int) and not isinstance(v, bool) and not k.startswith("_")
        }

    def is_size(name: str) -> bool:
        return "dim" in name or "size" in name

    if ctx.attention == "head_dims":
        ax = _head_dim_axis(attrs, sizes, varying, is_size)
        if ax is not None:
            return ax
    for ax in varying:
        if any(v == sizes[ax] and "head" in k and not is_size(k) for k, v in attrs.items()):
            return ax
    head_sized = [
        ax
        for ax in varying
        if any(v == sizes[ax] and "head" in k and is_size(k) for k, v in attrs.items())
    ]
    if head_sized:
        others = [ax for ax in varying if ax not in head_sized]
        if others:
            return others[0]
    fixed = [ax for ax in varying if sizes[ax] in attrs.values()]
    free = [ax for ax in varying if ax not in fixed]
    return free[-1] if free else varying[-1]


def _head_dim_axis(
    attrs: dict[str, int], sizes: list[int], varying: list[int], is_size: Any
) -> int | None:
    """``attention="head_dims"``: the head-size axis is pruned (the same dims of every head),
    found as the axis a head-size attribute names, else the last axis other than one a
    head-count attribute names; ``None`` for reshapes that are not head splits."""
    for ax in varying:
        if any(v == sizes[ax] and "head" in k and is_size(k) for k, v in attrs.items()):
            return ax
    counts = [
        ax
        for ax in varying
        if any(v == sizes[ax] and "head" in k and not is_size(k) for k, v in attrs.items())
    ]
    rest = [ax for ax in varying if ax not in counts]
    return rest[-1] if counts and rest else None


def couple_same_split(ctx: TraceContext, site: SplitSite) -> None:
    """Head-dim units: one module's head splits of equal shape (q, k, v viewed with the same
    ``head_dim`` attribute) must keep equal head sizes, so their pruned axes are one unit."""
    for prev in ctx.splits:
        if (
            prev.kind == "split"
            and prev.module_path == site.module_path
            and prev.sizes == site.sizes
            and prev.axis == site.axis
        ):
            ctx.couple(prev.rep_atoms, site.rep_atoms, f"{site.module_path}: equal head sizes")
            return
