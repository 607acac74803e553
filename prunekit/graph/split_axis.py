"""Which axis of a reshape that splits a prunable dim becomes the pruned one (heads or head
dims), and coupling of the reshapes of one module that read one size attribute.

After a cut, surgery lowers the int attributes a reshape's size was read from
(``head_dim``, ``num_heads``, ``split_size``; see ``surgery.apply._new_value``). Every
reshape of that module reads the new value, so all the sites that feed one attribute must
lose the same positions: :func:`couple_same_split` makes their units one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import nn

from .context import SplitSite, TraceContext

__all__ = ["choose_axis", "couple_same_split", "fed_attributes", "set_attribute_keeper"]


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
        # heads == head size (``view(b, n, -1, self.head_dim)`` with 4 heads of 4): the
        # head size is the last axis, the heads before it are the units
        return others[0] if others else varying[0]
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


# Attribute names surgery updates to follow a site's pruned size (mirrors
# ``surgery.apply._WORDS`` / ``_NOT_WIDTHS``: the graph may not import surgery).
_WORDS = {
    "split": ("head", "inner", "dim", "size"),
    "size": ("dim", "size", "channel", "feature", "width", "hidden", "embed", "plane"),
}
_NOT_WIDTHS = ("image", "img", "patch", "vocab", "max", "seq", "position", "layer", "window")


def _builtin_keeps(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.")


# module -> True when surgery keeps its attributes itself (a layer with a handler: Linear's
# ``in_features`` never follows a reshape); surgery installs the real test
_KEEPS_OWN: list[Callable[[nn.Module], bool]] = [_builtin_keeps]


def set_attribute_keeper(keeps_own: Callable[[nn.Module], bool]) -> None:
    """Install the test for modules whose attributes surgery never sets from a reshape
    (``prunekit.surgery`` installs "has a layer handler")."""
    _KEEPS_OWN[:] = [keeps_own]


def fed_attributes(module: nn.Module | None, site: SplitSite) -> set[str]:
    """The attributes of ``module`` that follow ``site``'s pruned size after a cut.

    ``"parts"`` sites name theirs; for a ``"size"`` site, size-named int attributes equal
    to its size; for a head ``"split"``, count attributes (``num_heads``) when the heads
    are pruned, size attributes (``head_dim``) when the last axis is, and size attributes
    equal to a product of axes that contains the pruned one (``all_head_size``).
    """
    if site.kind == "parts":
        return set(site.attrs)
    if module is None or _KEEPS_OWN[0](module):
        return set()
    old = site.sizes[site.axis]
    is_last = site.axis == len(site.sizes) - 1
    products = _products(site.sizes, site.axis) if site.kind == "split" else set()
    out: set[str] = set()
    for name, val in vars(module).items():
        low = name.lower()
        if (
            name.startswith("_")
            or isinstance(val, bool)
            or not isinstance(val, int)
            or any(w in low for w in _NOT_WIDTHS)
            or not any(w in low for w in _WORDS[site.kind])
        ):
            continue
        sized = "dim" in low or "size" in low or "width" in low
        if val == old:  # a count axis feeds count names, the last axis size names
            follows = site.kind == "size" or sized == is_last
        else:
            follows = sized and val in products
        if follows:
            out.add(name)
    return out


def _products(sizes: tuple[int, ...], axis: int) -> set[int]:
    """Products of two or more contiguous axes that include ``axis``."""
    out: set[int] = set()
    for lo in range(axis + 1):
        for hi in range(axis + 1, len(sizes) + 1):
            if hi - lo >= 2:
                out.add(math.prod(sizes[lo:hi]))
    return out


def couple_same_split(ctx: TraceContext, site: SplitSite) -> None:
    """Couple ``site`` with the earlier sites of its module that must keep its size.

    Sites that feed one attribute (q, k and v viewed with one ``self.head_dim``, two
    ``split(self.c)`` calls) lose the same positions, so their units are made one. With
    ``attention="head_dims"``, head splits of equal shape are coupled too (their head
    sizes must stay equal even when the code infers them with ``-1``).
    """
    old = site.sizes[site.axis]
    n = len(site.rep_atoms)
    fed: set[str] | None = None
    for prev in ctx.splits:
        if prev.module_path != site.module_path or len(prev.rep_atoms) != n:
            continue
        if prev.sizes[prev.axis] != old:
            continue
        if (
            ctx.attention == "head_dims"
            and prev.kind == site.kind == "split"
            and prev.sizes == site.sizes
            and prev.axis == site.axis
        ):
            ctx.couple(prev.rep_atoms, site.rep_atoms, f"{site.module_path}: equal head sizes")
            continue
        if fed is None:
            fed = fed_attributes(ctx.module, site)
        shared = fed and fed & fed_attributes(ctx.module, prev)
        if shared:
            reason = f"{site.module_path}: reshapes reading attribute {sorted(shared)[0]!r}"
            ctx.couple(prev.rep_atoms, site.rep_atoms, reason)
