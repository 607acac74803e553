"""Op rules for ops that move positions around: views, permutes, cat, split, slicing."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import rules_split  # noqa: F401  (split/chunk rules live there; registers them)
from .context import Info, Label, SplitSite, TraceContext
from .registry import register_op_rule
from .split_axis import choose_axis, couple_same_split

__all__ = ["reshape_info", "copy_rule"]


def _norm(d: int, n: int) -> int:
    return d + n if d < 0 else d


@register_op_rule(
    "clone", "contiguous", "detach", "alias", "lift_fresh", "lift_fresh_copy", "_to_copy",
    "to", "_conj", "resolve_conj", "resolve_neg", "dropout", "feature_dropout",
)  # fmt: skip
def copy_rule(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    """Ops that return a tensor with the same layout and values as their input."""
    src = args.get("self", args.get("input"))
    info = ctx.get(src)
    if info.ndim == getattr(out, "ndim", -1):
        ctx.set(out, Info(list(info.labels), list(info.zeros)))


@register_op_rule("as_strided", "as_strided_")
def _as_strided(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    """Re-striding that keeps the shape (kernels use it to fix memory format) is a copy."""
    src = args["self"]
    info = ctx.get(src)
    if tuple(args["size"]) == tuple(src.shape) and not args.get("storage_offset"):
        ctx.set(out, Info(list(info.labels), list(info.zeros)))
    else:
        ctx.unsupported_op(op, [info])


@register_op_rule(
    "empty_like", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like",
    "randint_like", "bernoulli",
)  # fmt: skip
def _like(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    """A fresh tensor shaped like its source (a dropout mask) is cut along with it."""
    info = ctx.get(args.get("self", args.get("input")))
    if info.ndim == getattr(out, "ndim", -1):
        ctx.set(out, Info(list(info.labels), [None] * info.ndim))


@register_op_rule("native_dropout")
def _native_dropout(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    info = ctx.get(args["input"])
    ctx.set(out[0], Info(list(info.labels), list(info.zeros)))


@register_op_rule("permute")
def _permute(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    info = ctx.get(args["self"])
    dims = [_norm(d, info.ndim) for d in args["dims"]]
    ctx.set(out, Info([info.labels[d] for d in dims], [info.zeros[d] for d in dims]))


@register_op_rule("transpose", "swapaxes", "swapdims", "t", "numpy_T", "mT")
def _transpose(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    info = ctx.get(args["self"])
    n = info.ndim
    if n < 2:
        ctx.set(out, Info(list(info.labels), list(info.zeros)))
        return
    d0 = _norm(int(args.get("dim0", args.get("axis0", 0))), n)
    d1 = _norm(int(args.get("dim1", args.get("axis1", 1))), n)
    if op in ("t", "numpy_T", "mT"):
        d0, d1 = n - 2, n - 1
    labels, zeros = list(info.labels), list(info.zeros)
    labels[d0], labels[d1] = labels[d1], labels[d0]
    zeros[d0], zeros[d1] = zeros[d1], zeros[d0]
    ctx.set(out, Info(labels, zeros))


def _runs(a: tuple[int, ...], b: tuple[int, ...]) -> list[tuple[list[int], list[int]]] | None:
    """Pair contiguous dim runs of two shapes with equal products (``None`` if impossible)."""
    runs: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        ins, outs, pa, pb = [i], [j], a[i], b[j]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb and i < len(a):
                ins.append(i)
                pa *= a[i]
                i += 1
            elif pb < pa and j < len(b):
                outs.append(j)
                pb *= b[j]
                j += 1
            else:
                return None
        runs.append((ins, outs))
    rest_a, rest_b = list(range(i, len(a))), list(range(j, len(b)))
    if any(a[k] != 1 for k in rest_a) or any(b[k] != 1 for k in rest_b):
        return None
    if runs:
        runs[-1][0].extend(rest_a)
        runs[-1][1].extend(rest_b)
    elif rest_a or rest_b:
        runs.append((rest_a, rest_b))
    return runs


def _flat(
    info: Info, dims: list[int], shape: tuple[int, ...], ctx: TraceContext
) -> tuple[Label, Label]:
    """Atoms (and zeros) of the flattened positions of ``dims``; one labelled dim at most."""
    labelled = [d for d in dims if info.labels[d] is not None]
    if not labelled:
        return None, None
    for extra in labelled[1:]:
        lab = info.labels[extra]
        assert lab is not None
        ctx.table.freeze(lab, ctx.where("reshape merging two prunable dims"))
    k = labelled[0]
    sizes = [shape[d] for d in dims]
    view = [1] * len(dims)
    view[dims.index(k)] = shape[k]
    lab, zer = info.labels[k], info.zeros[k]
    assert lab is not None and zer is not None
    atoms = np.broadcast_to(lab.reshape(view), sizes).ravel()
    zeros = np.broadcast_to(zer.reshape(view), sizes).ravel()
    return atoms, zeros


def _split_flat(
    ctx: TraceContext, atoms: np.ndarray, zeros: np.ndarray, sizes: list[int]
) -> tuple[list[Label], list[Label], bool]:
    """Distribute flat labelled positions over the output dims of a reshape; the flag says
    whether it recorded a head split (several varying axes, one pruned)."""
    grid = atoms.reshape(sizes)
    zgrid = zeros.reshape(sizes)
    varying = [ax for ax in range(len(sizes)) if not (grid == grid.take([0], axis=ax)).all()]
    labels: list[Label] = [None] * len(sizes)
    zs: list[Label] = [None] * len(sizes)
    if not varying:
        ax = next((a for a in range(len(sizes)) if sizes[a] > 1), 0)
        varying = [ax]
    ax = varying[0] if len(varying) == 1 else choose_axis(ctx, sizes, varying)
    if len(varying) > 1:
        moved = np.moveaxis(grid, ax, 0).reshape(sizes[ax], -1)
        for row in moved:
            ctx.table.union_all(row)
        site = SplitSite(ctx.module_path, tuple(sizes), ax, moved[:, 0].copy())
        couple_same_split(ctx, site)
        ctx.splits.append(site)
    index = tuple(slice(None) if a == ax else 0 for a in range(len(sizes)))
    labels[ax] = np.ascontiguousarray(grid[index])
    zs[ax] = np.asarray(np.moveaxis(zgrid, ax, 0).reshape(sizes[ax], -1).all(axis=1))
    return labels, zs, len(varying) > 1


def reshape_info(ctx: TraceContext, info: Info, src: tuple[int, ...], dst: tuple[int, ...]) -> Info:
    """Labels of a tensor of shape ``src`` viewed as ``dst``."""
    runs = _runs(src, dst)
    out = Info.empty(len(dst))
    split_dims: set[int] = set()  # dims made by splitting (heads): their sizes are split sites
    if runs is None:
        ctx.freeze_info(info, ctx.where(f"reshape {list(src)}->{list(dst)}"))
        return out
    for ins, outs in runs:
        atoms, zeros = _flat(info, ins, src, ctx)
        if atoms is None or zeros is None or not outs:
            if atoms is not None and not outs:
                ctx.table.freeze(atoms, ctx.where("reshape dropping a prunable dim"))
            continue
        if len(outs) == 1:
            out.labels[outs[0]], out.zeros[outs[0]] = atoms, zeros
            continue
        labs, zs, is_site = _split_flat(ctx, atoms, zeros, [dst[o] for o in outs])
        # one varying axis of distinct positions ((b, n, 1, head_dim)) is a plain size;
        # a merged batch split back ((b * heads) -> (b, heads)) is nobody's attribute
        plain = not is_site and len(np.unique(atoms)) == len(atoms)
        for o, lab, z in zip(outs, labs, zs, strict=True):
            out.labels[o], out.zeros[o] = lab, z
            if not plain:
                split_dims.add(o)
    _record_sizes(ctx, out, split_dims)
    return out


def _record_sizes(ctx: TraceContext, out: Info, skip: set[int]) -> None:
    """Remember reshapes whose prunable target size is also an int attribute of the module."""
    module = ctx.module
    if module is None:
        return
    values = {v for v in vars(module).values() if isinstance(v, int) and not isinstance(v, bool)}
    for d, lab in enumerate(out.labels):
        if d in skip:
            continue
        # distinct atoms only: a batch*heads merge or a flatten repeats atoms and its size
        # is no attribute's business
        if lab is not None and len(lab) in values and len(np.unique(lab)) == len(lab):
            site = SplitSite(ctx.module_path, (len(lab),), 0, lab, kind="size")
            couple_same_split(ctx, site)
            ctx.splits.append(site)


@register_op_rule(
    "view", "_unsafe_view", "reshape", "_reshape_alias", "unsqueeze", "squeeze", "flatten",
    "unflatten", "view_as", "reshape_as", "_unsafe_view_as",
)  # fmt: skip
def _view(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    src = args["self"]
    ctx.set(out, reshape_info(ctx, ctx.get(src), tuple(src.shape), tuple(out.shape)))


@register_op_rule("expand", "expand_as", "broadcast_to")
def _expand(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    src = args["self"]
    info = ctx.get(src)
    off = out.dim() - src.dim()
    res = Info.empty(out.dim())
    for d in range(src.dim()):
        if src.shape[d] == out.shape[d + off]:
            res.labels[d + off], res.zeros[d + off] = info.labels[d], info.zeros[d]
    ctx.set(out, res)


@register_op_rule("repeat")
def _repeat(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    src = args["self"]
    info = ctx.get(src)
    reps = list(args["repeats"])
    off = len(reps) - src.dim()
    res = Info.empty(out.dim())
    for d in range(src.dim()):
        lab, z = info.labels[d], info.zeros[d]
        if lab is not None and z is not None:
            r = reps[d + off]
            res.labels[d + off], res.zeros[d + off] = np.tile(lab, r), np.tile(z, r)
    ctx.set(out, res)


@register_op_rule("cat", "concat", "concatenate")
def _cat(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    tensors = [t for t in args["tensors"] if t.dim() == out.dim()]
    dim = _norm(int(args.get("dim", 0)), out.dim())
    res = Info.empty(out.dim())
    infos = [ctx.get(t) for t in tensors]
    for d in range(out.dim()):
        if d == dim:
            if all(i.labels[d] is None for i in infos):
                continue
            parts, zparts = [], []
            for t, i in zip(tensors, infos, strict=True):
                lab, z = i.labels[d], i.zeros[d]
                if lab is None or z is None:
                    lab = ctx.table.new(t.shape[d])
                    ctx.table.freeze(lab, ctx.where("cat with an untracked tensor"))
                    z = np.zeros(t.shape[d], dtype=bool)
                parts.append(lab)
                zparts.append(z)
            res.labels[d], res.zeros[d] = np.concatenate(parts), np.concatenate(zparts)
        else:
            res.labels[d], res.zeros[d] = _couple_all(ctx, infos, d, op)
    ctx.set(out, res)


def _couple_all(ctx: TraceContext, infos: list[Info], d: int, op: str) -> tuple[Label, Label]:
    lab: Label = None
    zero: Label = None
    for i in infos:
        if lab is None and i.labels[d] is not None:
            lab, zero = i.labels[d], i.zeros[d]
    if lab is None:
        return None, None
    for i in infos:
        ctx.couple(lab, i.labels[d], ctx.where(op))
        if i.zeros[d] is not None and zero is not None:
            zero = zero & i.zeros[d]
    return lab, zero


@register_op_rule("stack")
def _stack(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    tensors = list(args["tensors"])
    dim = _norm(int(args.get("dim", 0)), out.dim())
    infos = [ctx.get(t) for t in tensors]
    res = Info.empty(out.dim())
    for d in range(tensors[0].dim()):
        o = d if d < dim else d + 1
        res.labels[o], res.zeros[o] = _couple_all(ctx, infos, d, op)
    ctx.set(out, res)


@register_op_rule("unbind")
def _unbind(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    src = args["self"]
    info = ctx.get(src)
    dim = _norm(int(args.get("dim", 0)), src.dim())
    lab = info.labels[dim]
    if lab is not None:
        ctx.table.freeze(lab, ctx.where("unbind over a prunable dim"))
    keep = [d for d in range(src.dim()) if d != dim]
    for piece in out:
        ctx.set(piece, Info([info.labels[d] for d in keep], [info.zeros[d] for d in keep]))


@register_op_rule("select")
def _select(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    src = args["self"]
    info = ctx.get(src)
    dim = _norm(int(args["dim"]), src.dim())
    lab = info.labels[dim]
    if lab is not None:
        ctx.table.freeze(lab, ctx.where("select of one index of a prunable dim"))
    keep = [d for d in range(src.dim()) if d != dim]
    ctx.set(out, Info([info.labels[d] for d in keep], [info.zeros[d] for d in keep]))


@register_op_rule("slice", "narrow")
def _slice(ctx: TraceContext, op: str, args: dict[str, Any], out: Any) -> None:
    src = args["self"]
    info = ctx.get(src)
    dim = _norm(int(args.get("dim", 0)), src.dim())
    res = Info(list(info.labels), list(info.zeros))
    lab, zer = info.labels[dim], info.zeros[dim]
    if lab is not None and zer is not None and out.shape[dim] != src.shape[dim]:
        ctx.table.freeze(lab, ctx.where(f"{op} with fixed bounds over a prunable dim"))
        if op == "narrow":
            s = int(args["start"])
            sl = slice(s, s + int(args["length"]))
        else:
            sl = slice(args.get("start"), args.get("end"), args.get("step", 1))
        res.labels[dim], res.zeros[dim] = lab[sl], zer[sl]
    ctx.set(out, res)
