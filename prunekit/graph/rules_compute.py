"""Op rules for ops that compute: pointwise, convolution, matmul, norms, reductions."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .context import Info, Label, TraceContext
from .registry import register_op_rule

__all__ = ["pointwise_rule"]

# f(0) == 0: a zeroed unit stays zero through these.
ZERO_PRESERVING = {
    "relu", "relu_", "gelu", "gelu_", "silu", "silu_", "tanh", "tanh_", "hardtanh",
    "hardtanh_", "leaky_relu", "leaky_relu_", "elu", "elu_", "celu", "celu_", "selu", "selu_",
    "mish", "mish_", "hardswish", "hardswish_", "neg", "neg_", "abs", "abs_", "sin", "sin_",
    "sqrt", "sign", "erf", "atan", "tan", "asin", "sinh", "asinh", "atanh", "expm1", "log1p",
    "trunc", "round", "floor", "ceil", "square", "clone", "_to_copy", "alias", "detach",
    "prelu", "_prelu_kernel", "relu6", "threshold", "rrelu", "softshrink", "hardshrink",
    "frac", "nan_to_num", "positive",
}  # fmt: skip
MUL_LIKE = {"mul", "mul_", "bitwise_and", "logical_and"}
DIV_LIKE = {"div", "div_", "true_divide", "floor_divide", "pow", "pow_", "fmod", "remainder"}
ADD_LIKE = {
    "add", "add_", "sub", "sub_", "rsub", "where", "maximum", "minimum", "fmax", "fmin",
    "copy", "copy_", "lerp", "addcmul", "addcdiv", "clamp", "clamp_", "clip",
}  # fmt: skip


def _scalars_zero(args: dict[str, Any]) -> bool:
    for k, v in args.items():
        if k == "alpha" or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)) and v != 0:
            return False
    return True


def pointwise_rule(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    """Broadcasting elementwise op: couple aligned dims of every tensor operand."""
    tensors = [v for v in args.values() if isinstance(v, torch.Tensor)]
    outs = out if isinstance(out, (tuple, list)) else (out,)
    target = outs[0]
    if not isinstance(target, torch.Tensor):
        return
    n = target.dim()
    res = Info.empty(n)
    infos = [ctx.get(t) for t in tensors]
    for d in range(n):
        res.labels[d], res.zeros[d] = _pointwise_dim(ctx, op, args, tensors, infos, d, n)
    for o in outs:
        if isinstance(o, torch.Tensor) and o.dim() == n:
            ctx.set(o, res)


def _pointwise_dim(
    ctx: TraceContext,
    op: str,
    args: dict[str, Any],
    tensors: list[torch.Tensor],
    infos: list[Info],
    d: int,
    n: int,
) -> tuple[Label, Label]:
    labs: list[np.ndarray] = []
    zs: list[np.ndarray | None] = []
    untracked = False
    size = -1
    for t in tensors:
        k = d - (n - t.dim())
        if k >= 0:
            size = max(size, int(t.shape[k]))
    for t, info in zip(tensors, infos, strict=True):
        k = d - (n - t.dim())
        if k < 0 or (t.shape[k] == 1 and t.shape[k] != size):
            if k >= 0 and info.labels[k] is not None:
                ctx.table.freeze(info.labels[k], ctx.where(f"{op} broadcasts a size-1 dim"))
            zs.append(None)
            continue
        lab = info.labels[k]
        if lab is None:
            untracked = True
            zs.append(None)
        else:
            labs.append(lab)
            zs.append(info.zeros[k])
    if not labs:
        return None, None
    merged = labs[0]
    for lab in labs[1:]:
        if lab.shape == merged.shape:
            ctx.table.union(merged, lab)
    if untracked:
        ctx.table.freeze(merged, f"coupled to an untracked tensor by {ctx.where(op)}")
    return merged, _pointwise_zero(op, args, zs, len(merged))


def _pointwise_zero(
    op: str, args: dict[str, Any], zs: list[np.ndarray | None], size: int
) -> np.ndarray:
    none = np.zeros(size, dtype=bool)
    first = zs[0] if zs and zs[0] is not None else none
    if op in MUL_LIKE:
        acc = none.copy()
        for z in zs:
            if z is not None:
                acc |= z
        return acc
    if op in DIV_LIKE:
        if op.startswith("pow") and not (isinstance(args.get("exponent"), (int, float))):
            return none
        return first.copy()
    if op in ADD_LIKE:
        if not _scalars_zero(args):
            return none
        acc = np.ones(size, dtype=bool)
        for z in zs:
            acc &= z if z is not None else none
        return acc
    if op in ZERO_PRESERVING:
        return first.copy()
    return none


@register_op_rule("convolution", "_convolution", "conv2d", "conv1d", "conv3d")
def _convolution(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    x, w, b = args["input"], args["weight"], args.get("bias")
    xi, wi, bi = ctx.get(x), ctx.get(w), ctx.get(b)
    transposed = bool(args.get("transposed", False))
    groups = int(args.get("groups", 1))
    w_in, w_out = (0, 1) if transposed else (1, 0)
    for k in range(2, w.dim()):
        if wi.labels[k] is not None:
            ctx.table.freeze(wi.labels[k], ctx.where(f"{op} kernel dim"))
    for k in range(2, x.dim()):
        if xi.labels[k] is not None:
            ctx.table.freeze(xi.labels[k], ctx.where(f"{op} spatial dim"))
    out_lab = wi.labels[w_out]
    if transposed and groups > 1 and out_lab is not None:
        # weight dim 1 holds C_out / groups; output channel g*k+j uses weight[:, j].
        out_lab = np.tile(out_lab, groups)
    if b is not None and out_lab is not None:
        ctx.couple(out_lab, bi.labels[0], ctx.where(op))
    if transposed:
        ctx.couple(xi.labels[1], wi.labels[w_in], ctx.where(op))
        _couple_across_groups(ctx, wi.labels[w_in], groups)
    else:
        _couple_conv_input(ctx, xi.labels[1], wi.labels[w_in], out_lab, groups, op)
    res = Info.empty(out.dim())
    res.labels[0], res.zeros[0] = xi.labels[0], xi.zeros[0]
    if out_lab is not None:
        res.labels[1] = out_lab
        res.zeros[1] = np.ones(len(out_lab), dtype=bool)
    ctx.set(out, res)


def _couple_across_groups(ctx: TraceContext, lab: Label, groups: int) -> None:
    """Channel ``k`` of every group is one unit: a cut then removes the same number of
    channels from each group and keeps the channel count divisible by ``groups``.
    Several grouped convs on one tensor (different ``groups``) union their couplings into
    the coarser units that keep every one of them valid."""
    if lab is None or groups <= 1:
        return
    grid = lab.reshape(groups, -1)
    for g in range(1, groups):
        ctx.table.union(grid[0], grid[g])


def _couple_conv_input(
    ctx: TraceContext, x_lab: Label, w_in: Label, out_lab: Label, groups: int, op: str
) -> None:
    if groups == 1:
        ctx.couple(x_lab, w_in, ctx.where(op))
        return
    if w_in is not None and x_lab is not None and len(w_in) == 1:
        # Depthwise: input channel g feeds exactly the output channels of group g, so a
        # unit is a whole group (the handler lowers ``groups``).
        ctx.table.freeze(w_in, ctx.where(f"{op} depthwise kernel"))
        if out_lab is not None:
            per = len(out_lab) // groups
            ctx.table.union(np.repeat(x_lab, per), out_lab)
        return
    if x_lab is None or w_in is None:
        ctx.couple(x_lab, w_in, ctx.where(op))
    else:
        # Grouped: position k inside every group is one unit, shared with weight column k.
        grid = x_lab.reshape(groups, len(w_in))
        for g in range(groups):
            ctx.table.union(grid[g], w_in)
    # whatever the input is, the output channels must stay divisible by ``groups``
    _couple_across_groups(ctx, out_lab, groups)


def _contract(ctx: TraceContext, a: Info, da: int, b: Info, db: int, op: str) -> None:
    """Couple a contracted dim of two operands; non-exact if neither side is zero."""
    la, lb = a.labels[da], b.labels[db]
    if la is None and lb is None:
        return
    ctx.couple(la, lb, ctx.where(op))
    za, zb = a.zeros[da], b.zeros[db]
    if za is None or zb is None or not (za | zb).all():
        lab = la if la is not None else lb
        assert lab is not None
        ctx.table.mark_nonexact(lab, ctx.where(f"{op} contraction of two non-zero operands"))


@register_op_rule("mm", "addmm", "bmm", "baddbmm", "matmul", "linear")
def _matmul(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    if op == "linear":
        a, b = args["input"], args["weight"]
        ai, bi = ctx.get(a), ctx.get(b)
        bi = Info(bi.labels[::-1], bi.zeros[::-1])  # weight is [out, in]
        bias = args.get("bias")
    else:
        a = args.get("mat1", args.get("batch1", args.get("self")))
        b = args.get("mat2", args.get("batch2", args.get("other")))
        ai, bi = ctx.get(a), ctx.get(b)
        bias = args.get("self") if op in ("addmm", "baddbmm") else None
        if a is None or b is None or (op == "matmul" and (a.dim() < 2 or b.dim() < 2)):
            ctx.unsupported_op(op, [ai, bi])
            return
    n = out.dim()
    _contract(ctx, ai, ai.ndim - 1, bi, bi.ndim - 2, op)
    res = Info.empty(n)
    for d in range(n - 2):  # batch dims, right aligned
        ka, kb = d - (n - ai.ndim), d - (n - bi.ndim)
        labs = [i.labels[k] for i, k in ((ai, ka), (bi, kb)) if k >= 0]
        zs = [i.zeros[k] for i, k in ((ai, ka), (bi, kb)) if k >= 0]
        lab = next((lab for lab in labs if lab is not None), None)
        for other in labs:
            lab = ctx.couple(lab, other, ctx.where(op)) if lab is not None else lab
        res.labels[d] = lab
        res.zeros[d] = next((z for z in zs if z is not None), None)
    res.labels[n - 2], res.zeros[n - 2] = ai.labels[-2], ai.zeros[-2]
    res.labels[n - 1], res.zeros[n - 1] = bi.labels[-1], bi.zeros[-1]
    if bias is not None and res.labels[n - 1] is not None:
        binfo = ctx.get(bias)
        blab = binfo.labels[-1] if binfo.ndim else None
        ctx.couple(res.labels[n - 1], blab, ctx.where(op))
        bz = binfo.zeros[-1] if binfo.ndim and binfo.zeros[-1] is not None else None
        z = res.zeros[n - 1]
        res.zeros[n - 1] = z & bz if z is not None and bz is not None else None
    ctx.set(out, res)


def _channel_affine(
    ctx: TraceContext, op: str, x: Info, dims: list[int], params: list[Any]
) -> np.ndarray | None:
    """Couple dims of ``x`` with per-channel params; returns the zero mask of the output."""
    present = [p for p in params if p is not None]
    zero: np.ndarray | None = None
    for p in present:
        pinfo = ctx.get(p)
        for j, d in enumerate(dims):
            ctx.couple(x.labels[d], pinfo.labels[j] if j < pinfo.ndim else None, ctx.where(op))
    if len(present) == 2 and len(dims) == 1 and x.labels[dims[0]] is not None:
        zero = np.ones(len(x.labels[dims[0]]), dtype=bool)  # type: ignore[arg-type]
    return zero


@register_op_rule(
    "native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit",
    "batch_norm", "_native_batch_norm_legit_functional", "cudnn_batch_norm",
    "miopen_batch_norm",
)  # fmt: skip
def _batch_norm(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    x = args["input"]
    xi = ctx.get(x)
    params = [args.get("weight"), args.get("bias")]
    bufs = [args.get("running_mean"), args.get("running_var")]
    zero = _channel_affine(ctx, op, xi, [1], params + bufs)
    if args.get("weight") is None or args.get("bias") is None:
        zero = None
    elif xi.labels[1] is not None:
        zero = np.ones(len(xi.labels[1]), dtype=bool)
    res = Info(list(xi.labels), [None] * xi.ndim)
    res.zeros[1] = zero
    first = out[0] if isinstance(out, (tuple, list)) else out
    ctx.set(first, res)


@register_op_rule("native_layer_norm", "layer_norm", "rms_norm", "_fused_rms_norm")
def _layer_norm(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    x = args["input"]
    xi = ctx.get(x)
    k = len(args["normalized_shape"])
    dims = list(range(x.dim() - k, x.dim()))
    w, b = args.get("weight"), args.get("bias")
    res = Info(list(xi.labels), [None] * xi.ndim)
    for d in dims:
        lab = xi.labels[d]
        if lab is None:
            continue
        if w is None:
            ctx.table.freeze(lab, ctx.where(f"{op} without affine weight over a prunable dim"))
        else:
            ctx.table.mark_nonexact(lab, ctx.where(f"{op} normalises over the unit dim"))
    _channel_affine(ctx, op, xi, dims, [w, b])
    if w is not None and (b is not None or op in ("rms_norm", "_fused_rms_norm")):
        for d in dims:
            lab = xi.labels[d]
            if lab is not None:
                res.zeros[d] = np.ones(len(lab), dtype=np.bool_)
    first = out[0] if isinstance(out, (tuple, list)) else out
    ctx.set(first, res)


@register_op_rule("native_group_norm", "group_norm")
def _group_norm(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    x = args["input"]
    xi = ctx.get(x)
    groups = int(args.get("group", args.get("num_groups", 1)))
    lab = xi.labels[1]
    w = args.get("weight")
    if lab is not None:
        if w is None:
            ctx.table.freeze(lab, ctx.where(f"{op} without affine weight"))
        elif groups != len(lab):
            grid = lab.reshape(groups, -1)
            for g in range(1, groups):
                ctx.table.union(grid[0], grid[g])
            ctx.table.mark_nonexact(lab, ctx.where(f"{op} normalises over channel groups"))
    _channel_affine(ctx, op, xi, [1], [w, args.get("bias")])
    res = Info(list(xi.labels), [None] * xi.ndim)
    first = out[0] if isinstance(out, (tuple, list)) else out
    ctx.set(first, res)


@register_op_rule("embedding", "embedding_bag", "_embedding_bag")
def _embedding(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    w = args["weight"]
    wi = ctx.get(w)
    if wi.labels[0] is not None:
        ctx.table.freeze(wi.labels[0], ctx.where(f"{op} vocabulary dim"))
    first = out[0] if isinstance(out, (tuple, list)) else out
    res = Info.empty(first.dim())
    res.labels[-1] = wi.labels[1]
    res.zeros[-1] = wi.zeros[1]
    ctx.set(first, res)


@register_op_rule("glu")
def _glu(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    """``glu(x, dim) = a * sigmoid(b)`` with ``a, b`` the two halves of ``dim``: unit i is
    position i of both halves; it is zero when ``a``'s position is."""
    x = args["self"]
    xi = ctx.get(x)
    d = int(args.get("dim", -1)) % x.dim()
    res = Info(list(xi.labels), list(xi.zeros))
    lab, z = xi.labels[d], xi.zeros[d]
    if lab is not None:
        half = len(lab) // 2
        ctx.table.union(lab[:half], lab[half:])
        res.labels[d] = lab[:half].copy()
        res.zeros[d] = None if z is None else z[:half].copy()
    ctx.set(out, res)


# Elementwise ops that PyTorch does not tag as pointwise; ``_prelu_kernel`` gets PReLU's
# weight already viewed as [1, C, 1, ...], so broadcasting couples it with the channels.
register_op_rule(
    "prelu", "_prelu_kernel", "hardswish", "hardswish_", "mish", "mish_", "threshold", "threshold_", "masked_fill_",
    "rrelu", "rrelu_", "rrelu_with_noise", "celu_", "selu_", "logit", "logit_", "copy_",
    "fill_", "zero_", "bernoulli_", "uniform_", "normal_", "clamp_max_",
    "clamp_min_", "_conj_physical", "lerp_", "addcmul_", "addcdiv_", "where_",
)(pointwise_rule)  # fmt: skip
