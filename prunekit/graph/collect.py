"""Turn a finished trace (atoms + union-find) into dependency groups, vectorised."""

from __future__ import annotations

from typing import Any

import numpy as np

from .tracer import TraceResult
from .unionfind import Event

__all__ = ["collect_units", "RawGroup", "FrozenRows"]

RawGroup = dict[str, Any]
FrozenRows = dict[tuple[str, str], tuple[set[str], int]]


def _rows(res: TraceResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Every labelled position of every parameter/buffer: (root, tensor, dim, position)."""
    table = res.ctx.table
    names = list(res.infos)
    roots, tens, dims, poss = [], [], [], []
    for ti, name in enumerate(names):
        for d, lab in enumerate(res.infos[name].labels):
            if lab is None or not table.touched[lab].any():
                continue
            roots.append(table.find(lab))
            tens.append(np.full(len(lab), ti, dtype=np.int64))
            dims.append(np.full(len(lab), d, dtype=np.int64))
            poss.append(np.arange(len(lab), dtype=np.int64))
    if not roots:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty, names
    return (
        np.concatenate(roots),
        np.concatenate(tens),
        np.concatenate(dims),
        np.concatenate(poss),
        names,
    )


def _frozen_rows(
    r: np.ndarray, t: np.ndarray, d: np.ndarray, names: list[str], frozen: dict[int, Event]
) -> FrozenRows:
    out: FrozenRows = {}
    if not len(r):
        return out
    roots, inverse = np.unique(r, return_inverse=True)
    events = [frozen[int(x)] for x in roots]
    keys = sorted({(e.reason, e.kind) for e in events})
    key_id = {k: i for i, k in enumerate(keys)}
    ev_of_root = np.asarray([key_id[(e.reason, e.kind)] for e in events], dtype=np.int64)
    row_ev = ev_of_root[inverse]
    combos = np.unique(np.stack([row_ev, t, d], axis=1), axis=0)
    units = np.bincount(ev_of_root, minlength=len(keys))
    for k, (reason, kind) in enumerate(keys):
        members = {f"{names[ti]}:{di}" for ev, ti, di in combos.tolist() if ev == k}
        out[(reason, kind)] = (members, int(units[k]))
    return out


_HASH = np.random.default_rng(12345).integers(1, 2**62, size=1 << 16, dtype=np.int64)


def collect_units(res: TraceResult) -> tuple[list[RawGroup], FrozenRows]:
    """Group prunable units by their member signature; summarise frozen ones by reason.

    A unit's signature is the list of (tensor, dim, positions-per-unit) it touches; units
    with equal signatures form one group. Everything is vectorised over positions: a
    ResNet-50 has ~26k units.
    """
    table = res.ctx.table
    frozen = table.resolve(table.frozen)
    nonexact = table.resolve(table.nonexact)
    r, t, d, p, names = _rows(res)
    is_frozen = np.isin(r, np.fromiter(frozen, dtype=np.int64, count=len(frozen)))
    frozen_rows = _frozen_rows(r[is_frozen], t[is_frozen], d[is_frozen], names, frozen)
    r, t, d, p = r[~is_frozen], t[~is_frozen], d[~is_frozen], p[~is_frozen]
    order = np.lexsort((p, d, t, r))
    r, t, d, p = r[order], t[order], d[order], p[order]
    if not len(r):
        return [], frozen_rows
    # segments: one per (root, tensor, dim), with where its positions start and their count
    change = np.ones(len(r), dtype=bool)
    change[1:] = (r[1:] != r[:-1]) | (t[1:] != t[:-1]) | (d[1:] != d[:-1])
    seg = np.flatnonzero(change)
    seg_count = np.diff(np.append(seg, len(r)))
    seg_root, seg_t, seg_d = r[seg], t[seg], d[seg]
    code = (seg_t * 64 + seg_d) * 4096 + np.minimum(seg_count, 4095)
    # per root: an order-independent hash of its segment codes = its signature
    root_change = np.ones(len(seg), dtype=bool)
    root_change[1:] = seg_root[1:] != seg_root[:-1]
    root_first = np.flatnonzero(root_change)
    sig = np.add.reduceat(_HASH[code % len(_HASH)] ^ (code * 0x9E3779B1), root_first)
    is_param = np.asarray([res.is_param[n] for n in names])
    has_param = np.logical_or.reduceat(is_param[seg_t], root_first)
    groups = []
    for h in np.unique(sig[has_param]).tolist():
        which = np.flatnonzero((sig == h) & has_param)
        groups.append(_raw_group(which, root_first, seg, seg_count, seg_t, seg_d, p, names,
                                 is_param, seg_root, nonexact))  # fmt: skip
    groups.sort(
        key=lambda g: (
            names.index(g["members"][0][0]),
            g["members"][0][1],
            g["members"][0][2].min(),
        )
    )
    return groups, frozen_rows


def _raw_group(
    which: np.ndarray,
    root_first: np.ndarray,
    seg: np.ndarray,
    seg_count: np.ndarray,
    seg_t: np.ndarray,
    seg_d: np.ndarray,
    p: np.ndarray,
    names: list[str],
    is_param: np.ndarray,
    seg_root: np.ndarray,
    nonexact: dict[int, Event],
) -> RawGroup:
    """One group: ``which`` indexes its roots; every root has the same segment layout."""
    first = root_first[which]
    n_members = int(np.diff(np.append(root_first, len(seg)))[which[0]])
    segs = first[:, None] + np.arange(n_members)[None, :]  # [units, members]
    starts = seg[segs]
    order = np.lexsort(tuple(p[starts[:, k]] for k in reversed(range(n_members))))
    segs, starts = segs[order], starts[order]
    members = []
    for k in range(n_members):
        c = int(seg_count[segs[0, k]])
        idx = p[starts[:, k, None] + np.arange(c)[None, :]]
        ti, di = int(seg_t[segs[0, k]]), int(seg_d[segs[0, k]])
        members.append((names[ti], di, idx, bool(is_param[ti])))
    roots = seg_root[segs[:, 0]].tolist()
    reasons = sorted({nonexact[x].reason for x in roots if x in nonexact})
    return {"members": members, "reasons": reasons, "roots": roots}
