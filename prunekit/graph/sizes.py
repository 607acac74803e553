"""Python-level reads of prunable sizes, and the ops that compute with them.

``q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])`` reads the head size in Python: after a
head-dim cut the softmax temperature changes, so that cut is not function-preserving even
when every removed slice is zero. Such reads never reach the dispatcher (``t.shape`` is a
Python int), but they pass through ``__torch_function__``. Each read of a labelled dim is
recorded with its value and atoms for as long as the module that made it is running; an
arithmetic op that then receives a number equal to the size, its square root or their
inverses marks the dim's units non-exact. A size that only feeds ``view``/``reshape``
(``B, N, C = x.shape``) marks nothing: shape arguments are not checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .context import TraceContext

__all__ = ["SizeRead", "record_size_read", "check_scalars", "drop_size_reads"]

# Ops whose number arguments are values (not shapes): checked against the size reads.
_VALUE_OPS = {
    "full", "scalar_tensor", "fill", "fill_", "new_full", "lift_fresh", "lift_fresh_copy",
    "full_like",
}  # fmt: skip
_SCALE_ARGS = ("scale", "alpha")  # sdpa(scale=...), baddbmm(alpha=...)
# Constants too common to attribute to a size (sqrt(4) = 2, 1/sqrt(4) = 0.5).
_COMMON = (0.5, 1.0, 2.0)


@dataclass
class SizeRead:
    """One Python-level read of a labelled dim's size."""

    value: int
    atoms: np.ndarray
    what: str  # "shape[-1]"
    module_path: str
    depth: int  # module-stack depth at the read: the read lives while that module runs


def _is_size_read(func: Any) -> bool:
    return func is torch.Tensor.size or getattr(func, "__self__", None) is torch.Tensor.shape


def record_size_read(ctx: TraceContext, func: Any, args: tuple[Any, ...]) -> None:
    """If ``func`` is ``Tensor.size`` / ``Tensor.shape``, remember the labelled dims it read."""
    if not _is_size_read(func) or not args or not isinstance(args[0], torch.Tensor):
        return
    t = args[0]
    info = ctx.get(t)
    if info.is_empty():
        return
    dims = range(t.dim())
    if len(args) > 1 and isinstance(args[1], int):
        dims = range(args[1] % t.dim(), args[1] % t.dim() + 1)
    for d in dims:
        lab = info.labels[d]
        if lab is not None and len(lab) >= 2:
            what = f"shape[{d - t.dim()}]"
            read = SizeRead(len(lab), lab, what, ctx.module_path, len(ctx.module_stack))
            ctx.size_reads.append(read)


def drop_size_reads(ctx: TraceContext, depth: int) -> None:
    """The module at stack depth ``depth`` returned: forget the reads it (or callees) made."""
    if ctx.size_reads:
        ctx.size_reads[:] = [r for r in ctx.size_reads if r.depth < depth]


def _numbers(op: str, args: dict[str, Any], pointwise: bool) -> list[float]:
    out: list[float] = []
    for name, v in args.items():
        if not (pointwise or op in _VALUE_OPS or name in _SCALE_ARGS):
            continue
        if isinstance(v, torch.Tensor) and v.dim() == 0 and v.device.type == "cpu":
            v = v.item()  # a 0-d tensor made from a number (torch.tensor(math.sqrt(d)))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def _derived(value: int) -> list[tuple[float, str]]:
    root = math.sqrt(value)
    forms = [(value, "{}"), (root, "sqrt({})"), (1 / value, "1/{}"), (1 / root, "1/sqrt({})")]
    return [(f, s) for f, s in forms if f not in _COMMON]


def check_scalars(ctx: TraceContext, op: str, args: dict[str, Any], *, pointwise: bool) -> None:
    """Mark non-exact the dims whose recorded size (or a function of it) ``op`` computes with."""
    numbers = _numbers(op, args, pointwise)
    if not numbers:
        return
    for read in ctx.size_reads:
        for form, text in _derived(read.value):
            if any(math.isclose(n, form, rel_tol=1e-6) for n in numbers):
                ctx.table.mark_nonexact(
                    read.atoms,
                    f"reads the size of a prunable dim ({read.what} = {read.value}) in module "
                    f"'{read.module_path or '<root>'}' and computes with "
                    f"{text.format(read.value)} in {ctx.where(op)}: a cut changes that value",
                )
                break
