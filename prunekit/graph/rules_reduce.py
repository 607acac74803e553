"""Op rules for reductions, softmax, pooling/resampling and fused attention."""

from __future__ import annotations

from typing import Any

import numpy as np

from .context import Info, TraceContext
from .registry import register_op_rule

SUM_LIKE = {"sum", "nansum"}


def _dims(args: dict[str, Any], ndim: int) -> list[int]:
    dim = args.get("dim")
    if dim is None:
        return list(range(ndim))
    if isinstance(dim, int):
        dim = [dim]
    return sorted({d + ndim if d < 0 else d for d in dim}) or list(range(ndim))


@register_op_rule(
    "sum", "nansum", "mean", "nanmean", "amax", "amin", "max", "min", "var", "std", "var_mean",
    "std_mean", "norm", "linalg_vector_norm", "logsumexp", "prod", "any", "all", "argmax",
    "argmin", "count_nonzero",
)  # fmt: skip
def _reduce(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    x = args["self"] if "self" in args else args["input"]
    xi = ctx.get(x)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    if "dim" not in args and op in ("max", "min"):
        dims = list(range(x.dim()))
    else:
        dims = _dims(args, x.dim())
    for d in dims:
        lab = xi.labels[d]
        if lab is None:
            continue
        z = xi.zeros[d]
        if op in SUM_LIKE and z is not None and z.all():
            continue
        ctx.table.mark_nonexact(lab, ctx.where(f"{op} reduces over the unit dim"))
    keep = [d for d in range(x.dim()) if d not in dims]
    keepdim = bool(args.get("keepdim", False))
    for o in outs:
        if not hasattr(o, "dim"):
            continue
        res = Info.empty(o.dim())
        if keepdim and o.dim() == x.dim():
            for d in keep:
                res.labels[d] = xi.labels[d]
                res.zeros[d] = xi.zeros[d] if op in SUM_LIKE else None
        elif o.dim() == len(keep):
            for j, d in enumerate(keep):
                res.labels[j] = xi.labels[d]
                res.zeros[j] = xi.zeros[d] if op in SUM_LIKE else None
        ctx.set(o, res)


@register_op_rule("_softmax", "softmax", "_log_softmax", "log_softmax", "_safe_softmax")
def _softmax(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    x = args["self"] if "self" in args else args["input"]
    xi = ctx.get(x)
    d = int(args["dim"])
    d = d + x.dim() if d < 0 else d
    if xi.labels[d] is not None:
        ctx.table.mark_nonexact(xi.labels[d], ctx.where(f"{op} over the unit dim"))
    ctx.set(out, Info(list(xi.labels), [None] * xi.ndim))


@register_op_rule(
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
    "max_pool2d_with_indices", "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "adaptive_max_pool3d", "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
    "upsample_bilinear2d", "upsample_bicubic2d", "upsample_linear1d", "upsample_trilinear3d",
    "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
    "_upsample_bilinear2d_aa", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
    "replication_pad1d", "replication_pad2d", "replication_pad3d", "pixel_unshuffle",
    "constant_pad_nd", "pad", "lp_pool2d", "fractional_max_pool2d",
)  # fmt: skip
def _spatial(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    """Ops that act on trailing (spatial) dims only: batch and channel dims pass through."""
    x = args["self"] if "self" in args else args["input"]
    xi = ctx.get(x)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    passthrough = 2 if x.dim() >= 3 else 1
    moved = set(range(passthrough, x.dim()))
    if op == "constant_pad_nd" or op == "pad":
        pads = list(args.get("pad", []))
        # pad lists (before, after) pairs from the last dim backwards; (0, 0) moves nothing
        moved = {x.dim() - 1 - i for i in range(len(pads) // 2) if pads[2 * i] or pads[2 * i + 1]}
    for d in moved:
        if xi.labels[d] is not None:
            ctx.table.freeze(xi.labels[d], ctx.where(f"{op} over a prunable dim"))
    for o in outs:
        if hasattr(o, "dim") and o.dim() == x.dim():
            res = Info.empty(o.dim())
            for d in range(x.dim()):
                if d not in moved and o.shape[d] == x.shape[d]:
                    res.labels[d], res.zeros[d] = xi.labels[d], xi.zeros[d]
            ctx.set(o, res)


@register_op_rule("pixel_shuffle")
def _pixel_shuffle(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    x = args["self"]
    xi = ctx.get(x)
    r2 = int(args["upscale_factor"]) ** 2
    res = Info.empty(out.dim())
    res.labels[0], res.zeros[0] = xi.labels[0], xi.zeros[0]
    lab, z = xi.labels[1], xi.zeros[1]
    if lab is not None and z is not None:
        grid = lab.reshape(-1, r2)
        for row in grid:
            ctx.table.union_all(row)
        res.labels[1], res.zeros[1] = grid[:, 0].copy(), np.asarray(z.reshape(-1, r2).all(axis=1))
    ctx.set(out, res)


@register_op_rule(
    "scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_attention_math", "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
)  # fmt: skip
def _sdpa(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    q, k, v = args["query"], args["key"], args["value"]
    qi, ki, vi = ctx.get(q), ctx.get(k), ctx.get(v)
    first = out[0] if isinstance(out, (tuple, list)) else out
    n = q.dim()
    res = Info.empty(first.dim())
    for d in range(n - 2):
        lab = qi.labels[d]
        for other in (ki, vi):
            olab = other.labels[d]
            if lab is not None and olab is not None and len(olab) != len(lab):
                # Grouped-query attention: query head h reads key/value head h // rep.
                olab = np.repeat(olab, len(lab) // len(olab))
            lab = ctx.couple(lab, olab, ctx.where(op)) if lab is not None else olab
        res.labels[d] = lab
        vz = vi.zeros[d]
        if lab is not None and vz is not None and len(vz) != len(lab):
            vz = np.repeat(vz, len(lab) // len(vz))
        res.zeros[d] = vz if lab is not None and vz is not None and len(vz) == len(lab) else None
    lq, lk = qi.labels[n - 1], ki.labels[n - 1]
    if lq is not None or lk is not None:
        ctx.couple(lq, lk, ctx.where(op))
        zq, zk = qi.zeros[n - 1], ki.zeros[n - 1]
        if zq is None or zk is None or not (zq | zk).all():
            ctx.table.mark_nonexact(lq if lq is not None else lk, ctx.where(op))
        elif args.get("scale") is None:  # the default scale 1/sqrt(head_dim) follows a cut
            why = f"{op} scale (the default 1/sqrt(head size) changes with a head-dim cut)"
            ctx.table.mark_nonexact(lq if lq is not None else lk, ctx.where(why))
    ctx.couple(ki.labels[n - 2], vi.labels[n - 2], ctx.where(op))
    res.labels[n - 1], res.zeros[n - 1] = vi.labels[n - 1], vi.zeros[n - 1]
    res.labels[n - 2] = qi.labels[n - 2]
    ctx.set(first, res)


@register_op_rule("roll", "flip", "cumsum", "cumprod", "cummax", "cummin", "sort", "argsort")
def _along_dims(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    """Ops that move or mix positions along the given dims only; other dims pass through."""
    x = args["self"]
    xi = ctx.get(x)
    raw = args.get("dims", args.get("dim", []))
    dims = {int(d) % max(1, x.dim()) for d in (raw if isinstance(raw, (list, tuple)) else [raw])}
    if op == "roll" and not dims:
        dims = set(range(x.dim()))  # roll without dims flattens the tensor
    for d in dims:
        ctx.table.freeze(xi.labels[d], ctx.where(f"{op} along a prunable dim"))
    res = Info(list(xi.labels), list(xi.zeros))
    for d in dims:
        res.labels[d], res.zeros[d] = None, None
    for o in out if isinstance(out, (tuple, list)) else (out,):
        if hasattr(o, "dim") and o.dim() == x.dim():
            ctx.set(o, Info(list(res.labels), list(res.zeros)))


@register_op_rule("index", "_unsafe_index")
def _index(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    """Advanced indexing ``x[..., idx, ...]``: indexed dims are replaced by the index shape."""
    x = args["self"]
    xi = ctx.get(x)
    indices = list(args["indices"])
    indexed = [d for d, t in enumerate(indices) if t is not None]
    for d in indexed:
        ctx.table.freeze(xi.labels[d], ctx.where("indexing a prunable dim with a tensor"))
    rest = [d for d in range(x.dim()) if d not in indexed]
    res = Info.empty(out.dim())
    contiguous = indexed == list(range(indexed[0], indexed[-1] + 1)) if indexed else True
    n_idx = out.dim() - len(rest)
    slots: list[int | None]
    if contiguous and indexed:
        before = [d for d in rest if d < indexed[0]]
        after = [d for d in rest if d > indexed[-1]]
        slots = [*before, *([None] * n_idx), *after]
    else:
        slots = [*([None] * n_idx), *rest]
    for o, src in enumerate(slots):
        if src is not None:
            res.labels[o], res.zeros[o] = xi.labels[src], xi.zeros[src]
    ctx.set(out, res)
