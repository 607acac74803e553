"""Turn a finished trace (atoms + union-find) into dependency groups, vectorised."""

from __future__ import annotations

from collections import defaultdict
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
    seen: set[int] = set()
    for root, ti, di in zip(r.tolist(), t.tolist(), d.tolist(), strict=True):
        ev = frozen[root]
        members, n = out.get((ev.reason, ev.kind), (set(), 0))
        members.add(f"{names[ti]}:{di}")
        if root not in seen:
            seen.add(root)
            n += 1
        out[(ev.reason, ev.kind)] = (members, n)
    return out


def collect_units(res: TraceResult) -> tuple[list[RawGroup], FrozenRows]:
    """Group prunable units by their member signature; summarise frozen ones by reason."""
    table = res.ctx.table
    frozen = table.resolve(table.frozen)
    nonexact = table.resolve(table.nonexact)
    r, t, d, p, names = _rows(res)
    is_frozen = np.isin(r, np.fromiter(frozen, dtype=np.int64, count=len(frozen)))
    frozen_rows = _frozen_rows(r[is_frozen], t[is_frozen], d[is_frozen], names, frozen)
    r, t, d, p = r[~is_frozen], t[~is_frozen], d[~is_frozen], p[~is_frozen]
    order = np.lexsort((p, d, t, r))
    r, t, d, p = r[order], t[order], d[order], p[order]
    # one row per (root, tensor, dim): where its positions start and how many there are
    change = np.ones(len(r), dtype=bool)
    change[1:] = (r[1:] != r[:-1]) | (t[1:] != t[:-1]) | (d[1:] != d[:-1])
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, len(r)))
    per_root: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    for s, c in zip(starts.tolist(), counts.tolist(), strict=True):
        per_root[int(r[s])].append((int(t[s]), int(d[s]), c, s))
    is_param = [res.is_param[n] for n in names]
    by_sig: dict[tuple[tuple[int, int, int], ...], list[tuple[int, list[int]]]] = defaultdict(list)
    for root, entries in per_root.items():
        if not any(is_param[e[0]] for e in entries):
            continue
        sig = tuple((ti, di, c) for ti, di, c, _ in entries)
        by_sig[sig].append((root, [s for *_, s in entries]))
    groups = [_raw_group(sig, items, p, names, is_param, nonexact) for sig, items in by_sig.items()]
    groups.sort(key=lambda g: (names.index(g["members"][0][0]), g["members"][0][1]))
    return groups, frozen_rows


def _raw_group(
    sig: tuple[tuple[int, int, int], ...],
    items: list[tuple[int, list[int]]],
    p: np.ndarray,
    names: list[str],
    is_param: list[bool],
    nonexact: dict[int, Event],
) -> RawGroup:
    items.sort(key=lambda it: [int(p[s]) for s in it[1]])
    members = []
    for k, (ti, di, c) in enumerate(sig):
        starts = np.asarray([it[1][k] for it in items], dtype=np.int64)
        idx = p[starts[:, None] + np.arange(c)[None, :]]
        members.append((names[ti], di, idx.tolist(), is_param[ti]))
    reasons = sorted({nonexact[root].reason for root, _ in items if root in nonexact})
    return {"members": members, "reasons": reasons, "roots": [root for root, _ in items]}
