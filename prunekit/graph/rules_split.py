"""Op rules for split and chunk: which pieces of a prunable dim stay prunable after a cut.

A split is an index map like a concat's, read backwards: piece j owns a contiguous range
of the source positions. What a cut may do to the pieces depends on where their sizes come
from:

* ``chunk(n)`` derives the sizes at run time: every piece must lose the same positions, so
  position i of every piece is one unit.
* ``split(self.split_size)`` (one int attribute): the same, and the attribute follows.
* ``split([a, b])`` with explicit sizes: each piece is prunable on its own where its size is
  a module attribute (an int attribute equal to it, or a list/tuple attribute equal to the
  whole size list), which surgery then updates. Pieces read from one int attribute must be
  cut equally. A piece whose size is a literal in code stays frozen, with that reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from .context import Info, SplitSite, TraceContext
from .registry import register_op_rule
from .split_axis import couple_same_split

__all__ = ["size_sources"]

_EQUAL_PIECES = {"chunk", "unsafe_chunk", "tensor_split", "gru", "lstm", "rnn_tanh", "rnn_relu"}

# attribute names that hold counts or geometry, never a piece width
_NOT_SIZES = (
    "group", "head", "kernel", "stride", "pad", "dilation", "layer", "depth", "vocab",
    "max", "seq", "position", "image", "img", "patch", "window", "axis",
)  # fmt: skip
_NOT_SIZE_NAMES = {"dim", "ndim", "d"}  # the split axis, not a width


def _norm(d: int, n: int) -> int:
    return d + n if d < 0 else d


@register_op_rule("split", "split_with_sizes", "unsafe_split", "unsafe_split_with_sizes", "chunk")
def _split(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    src = args["self"]
    info = ctx.get(src)
    dim = _norm(int(args.get("dim", 0)), src.dim())
    sizes = [int(p.shape[dim]) for p in out]
    lab, zer = info.labels[dim], info.zeros[dim]
    if lab is not None and zer is not None:
        caller = ctx.fn_stack[-1] if ctx.fn_stack else ""
        if op.endswith("split_with_sizes") and caller not in _EQUAL_PIECES:
            _sized_pieces(ctx, lab, sizes)
        else:
            _equal_pieces(ctx, lab, sizes, caller or op)
    start = 0
    for piece, size in zip(out, sizes, strict=True):
        res = Info(list(info.labels), list(info.zeros))
        if lab is not None and zer is not None:
            res.labels[dim], res.zeros[dim] = lab[start : start + size], zer[start : start + size]
        start += size
        ctx.set(piece, res)


def _equal_pieces(ctx: TraceContext, lab: np.ndarray, sizes: list[int], caller: str) -> None:
    """``chunk`` and ``split(int)``: pieces of one run-time-derived size."""
    if len(set(sizes)) == 1 and caller not in _EQUAL_PIECES and _is_attribute(ctx, sizes[0]):
        # split(self.split_size): the piece size lives in an attribute that can follow
        caller = "chunk"
        site = SplitSite(ctx.module_path, (sizes[0],), 0, lab[: sizes[0]], kind="size")
        couple_same_split(ctx, site)
        ctx.splits.append(site)
    if len(set(sizes)) == 1 and caller in _EQUAL_PIECES:
        # chunk() derives piece sizes from the size at run time: cut every piece equally.
        grid = lab.reshape(len(sizes), sizes[0])
        for col in grid.T:
            ctx.table.union_all(col)
    else:
        ctx.table.freeze(lab, ctx.where(f"{caller} into fixed sizes {sizes}"))


def _sized_pieces(ctx: TraceContext, lab: np.ndarray, sizes: list[int]) -> None:
    """``split([a, b, ...])``: each piece is prunable where its size is an attribute."""
    sources = size_sources(ctx.module, sizes)
    bounds = np.cumsum([0, *sizes])
    pieces = [lab[bounds[j] : bounds[j + 1]] for j in range(len(sizes))]
    literal = [j for j, names in enumerate(sources) if not names]
    reason = (
        f"split sizes {sizes} are literals in module '{ctx.module_path or '<root>'}'; store "
        f"them in an attribute (self.split_sizes = {sizes}, or one int attribute per size) "
        "and pass that to split to let them follow the cut (pieces "
        f"{', '.join(map(str, literal))} match no attribute)"
    )
    for j in literal:
        ctx.table.freeze(pieces[j], reason)
    for j, names in enumerate(sources):
        if names:
            site = SplitSite(ctx.module_path, (sizes[j],), 0, pieces[j], "parts", names)
            couple_same_split(ctx, site)  # the same attribute in another split call
            ctx.splits.append(site)
        for k in range(j):  # pieces read from one int attribute lose the same positions
            if set(names) & set(sources[k]) and sizes[j] == sizes[k]:
                ctx.table.union(pieces[k], pieces[j])


def size_sources(module: nn.Module | None, sizes: list[int]) -> list[tuple[str, ...]]:
    """For each piece, the attributes of ``module`` its size may come from: public int
    attributes equal to it (``"c"``) and elements of list/tuple attributes equal to the
    whole size list (``"split_sizes[1]"``). Count-like names (``groups``, ``num_heads``,
    ``dim``) are never sources."""
    out: list[tuple[str, ...]] = [() for _ in sizes]
    if module is None:
        return out
    for name, val in vars(module).items():
        low = name.lower()
        if name.startswith("_") or low in _NOT_SIZE_NAMES or any(w in low for w in _NOT_SIZES):
            continue
        if isinstance(val, int) and not isinstance(val, bool):
            for j, s in enumerate(sizes):
                if val == s:
                    out[j] += (name,)
        elif _is_size_list(val, sizes):
            for j in range(len(sizes)):
                out[j] += (f"{name}[{j}]",)
    return out


def _is_size_list(val: object, sizes: list[int]) -> bool:
    if not isinstance(val, (list, tuple)) or len(sizes) < 2 or [*val] != sizes:
        return False
    return all(isinstance(v, int) and not isinstance(v, bool) for v in val)


def _is_attribute(ctx: TraceContext, value: int) -> bool:
    module = ctx.module
    if module is None:
        return False
    return any(
        v == value and not isinstance(v, bool) and any(w in k.lower() for w in ("size", "dim"))
        for k, v in vars(module).items()
        if isinstance(v, int)
    )
