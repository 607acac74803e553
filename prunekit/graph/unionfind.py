"""Atoms and a vectorised union-find over them.

Every position of every prunable tensor dimension is an *atom* (an integer id). Ops couple
atoms (``union``); a connected component of atoms is one prunable *unit*. Components can be
*frozen* (never cut) or marked *non-exact* (cutting the unit changes the function even when
its slices are zero); both carry human-readable reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["AtomTable", "Event"]


@dataclass
class Event:
    """A freeze or non-exactness event on a set of atoms, with its reason.

    ``kind`` is ``"fixed"`` for dimensions an op never maps (kernel sizes, vocab),
    ``"io"`` for model inputs/outputs, and ``"unsupported"`` for ops the engine cannot map.
    """

    atoms: np.ndarray
    reason: str
    kind: str = "fixed"


@dataclass
class AtomTable:
    """Growable union-find over integer atoms with freeze/non-exact event logs."""

    parent: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype=np.int64))
    touched: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype=bool))
    size: int = 0
    frozen: list[Event] = field(default_factory=list)
    nonexact: list[Event] = field(default_factory=list)

    def new(self, n: int) -> np.ndarray:
        """Allocate ``n`` fresh atoms and return their ids."""
        while self.size + n > len(self.parent):
            grown = np.zeros(len(self.parent) * 2, dtype=np.int64)
            grown[: len(self.parent)] = self.parent
            self.parent = grown
            touched = np.zeros(len(grown), dtype=bool)
            touched[: len(self.touched)] = self.touched
            self.touched = touched
        ids = np.arange(self.size, self.size + n, dtype=np.int64)
        self.parent[ids] = ids
        self.size += n
        return ids

    def find(self, atoms: np.ndarray) -> np.ndarray:
        """Vectorised root lookup with path halving."""
        x = np.asarray(atoms, dtype=np.int64)
        parent = self.parent
        p = parent[x]
        while (p != x).any():  # not np.array_equal: 5x the per-call overhead
            grand = parent[p]
            parent[x] = grand
            x = grand
            p = parent[x]
        return x

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Couple ``a[i]`` with ``b[i]`` for every i (equal-length arrays)."""
        a = np.asarray(a, dtype=np.int64).ravel()
        b = np.asarray(b, dtype=np.int64).ravel()
        if a.shape != b.shape:
            raise ValueError(f"union of atom arrays with shapes {a.shape} and {b.shape}")
        self.touched[a] = True
        self.touched[b] = True
        while a.size:
            ra, rb = self.find(a), self.find(b)
            diff = ra != rb
            if not diff.any():
                return
            ra, rb = ra[diff], rb[diff]
            lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
            self.parent[hi] = lo
            a, b = lo, hi

    def union_all(self, atoms: np.ndarray) -> None:
        """Couple every atom of ``atoms`` together."""
        atoms = np.asarray(atoms, dtype=np.int64).ravel()
        self.touched[atoms] = True
        if atoms.size > 1:
            self.union(atoms[:-1], atoms[1:])

    def freeze(self, atoms: np.ndarray | None, reason: str, kind: str = "fixed") -> None:
        """Record that the units containing ``atoms`` must never be cut (``None``: no-op)."""
        if atoms is None:
            return
        atoms = np.asarray(atoms, dtype=np.int64).ravel()
        if atoms.size:
            self.touched[atoms] = True
            self.frozen.append(Event(atoms.copy(), reason, kind))

    def mark_nonexact(self, atoms: np.ndarray | None, reason: str) -> None:
        """Record that cutting the units containing ``atoms`` is not function-preserving."""
        if atoms is None:
            return
        atoms = np.asarray(atoms, dtype=np.int64).ravel()
        if atoms.size:
            self.touched[atoms] = True
            self.nonexact.append(Event(atoms.copy(), reason))

    def resolve(self, events: list[Event]) -> dict[int, Event]:
        """Map each component root touched by ``events`` to its first event."""
        out: dict[int, Event] = {}
        for ev in events:
            for r in np.unique(self.find(ev.atoms)).tolist():
                prev = out.get(r)
                if prev is None or (prev.kind == "fixed" and ev.kind != "fixed"):
                    out[r] = ev
        return out
