"""Re-scoring in chunks within one call: remove the lowest units, score the rest again.

Single-unit scores ignore that removing two redundant units costs more than the sum of
removing each. Within one ``criterion(group, tensors)`` call, :func:`rescore` ranks a
group's units by elimination instead: score all units, zero the lowest
``ceil(units / chunks)`` (every member slice, which for an exact group is the same function
as removing them), prepare the criterion again on the model with those units zeroed, score
the units left, and so on until every unit has been eliminated. A unit's score is the
highest score seen up to its elimination (a running maximum), so the elimination order is
the order of the scores whatever the ratio cut afterwards, and the scores keep the base
criterion's units (for ``scope="global"``). The model's tensors and the criterion's state
are restored before the call returns. No schedule, no re-tracing: one call per group.

:class:`~prunekit.importance.LossContribution` re-scores this way by default
(``chunks=32``); :class:`Rescored` wraps any criterion. (Activation criteria gain nothing:
zeroing units does not change the other units' activations in the same layer.)
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ..errors import CalibrationWarning, ConfigError
from ..graph.dependency import DependencyGraph, Group
from .base import Criterion, Importance
from .registry import get_importance

__all__ = ["Rescored", "check_chunks", "rescore"]


def check_chunks(owner: str, chunks: object) -> None:
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1:
        raise ConfigError(f"{owner} chunks={chunks!r} must be a positive int (1: no re-scoring)")


def _zero(group: Group, tensors: dict[str, torch.Tensor], units: torch.Tensor) -> None:
    for m in group.members:
        t = tensors.get(m.name)
        if not m.is_param or t is None:
            continue
        idx = torch.as_tensor(m.indices[units.tolist()], dtype=torch.long, device=t.device)
        t.detach().index_fill_(m.dim, idx.reshape(-1), 0.0)


def _reprepare(crit: Any, model: nn.Module, graph: DependencyGraph) -> None:
    cal = getattr(crit, "calibration", None)
    if cal is not None and hasattr(cal, "forget"):
        cal.forget()
    with warnings.catch_warnings():  # the health check ran on the first prepare
        warnings.simplefilter("ignore", CalibrationWarning)
        crit.prepare(model, graph)


def _subgroup(group: Group, ids: torch.Tensor) -> Group:
    """The group restricted to units ``ids`` (a distinct key, so no cache confuses them)."""
    keep = ids.numpy()
    members = [replace(m, indices=m.indices[keep]) for m in group.members]
    return replace(group, members=members, uid=f"{group.key}#{len(keep)}")


def rescore(
    crit: Importance,
    model: nn.Module,
    graph: DependencyGraph,
    group: Group,
    tensors: dict[str, torch.Tensor],
    chunks: int,
    score: Any = None,
    keep: tuple[str, ...] = ("cost_",),
) -> tuple[torch.Tensor, int]:
    """Scores of ``group`` by elimination in ``chunks`` rounds (see the module docstring).

    ``crit`` must be prepared on ``model``, whose tensors ``tensors`` are. Each round scores
    the units left as a group of their own with ``score(group, tensors)`` (default: ``crit``).
    ``keep``: attributes of ``crit`` (cost counters) kept at their final values when its
    state is restored. Returns the scores and the number of re-preparations it took.
    """
    score = score or crit
    n = group.num_units
    per = max(1, math.ceil(n / chunks))
    saved = {m.name: tensors[m.name].detach().clone()
             for m in group.members if m.is_param and m.name in tensors}  # fmt: skip
    state = dict(vars(crit))
    ids = torch.arange(n)
    out = torch.zeros(n, dtype=torch.float64)
    level, rounds = -math.inf, 0
    try:
        while True:
            sub = group if len(ids) == n else _subgroup(group, ids)
            s = score(sub, tensors).detach().double().cpu()
            order = s.argsort(stable=True)
            last = len(ids) <= per
            take = order if last else order[:per]
            for k in take.tolist():
                level = max(level, float(s[k]))
                out[int(ids[k])] = level
            if last:
                break
            _zero(group, tensors, ids[take])
            ids = ids[order[per:].sort().values]
            _reprepare(crit, model, graph)
            rounds += 1
    finally:
        for name, value in saved.items():
            tensors[name].detach().copy_(value)
        cal = getattr(crit, "calibration", None)
        if cal is not None and hasattr(cal, "forget"):
            cal.forget()  # its cache may hold stats of the zeroed model
        vars(crit).update({k: v for k, v in state.items() if k not in keep})
    return out, rounds


@dataclass
class Rescored(Criterion):
    """Any criterion re-scored in ``chunks`` rounds within one call (:func:`rescore`); a
    data-driven base is prepared again on the zeroed model each round (a calibration pass).

    ``cost_``: ``rounds`` (re-preparations) and ``seconds``.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> crit = Rescored("l2", chunks=2)
        >>> prunekit.prune(net, torch.randn(1, 3), ratio=0.5, importance=crit).model[0].out_features
        2
    """

    base: Any = "l2"
    chunks: int = 8
    cost_: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        check_chunks("Rescored", self.chunks)
        self.criterion: Importance = get_importance(self.base)
        self.requires_data = bool(getattr(self.criterion, "requires_data", False))  # type: ignore[misc]
        self.requires_loss = bool(getattr(self.criterion, "requires_loss", False))  # type: ignore[misc]
        self._model: nn.Module | None = None
        self._graph: DependencyGraph | None = None

    def prepare(self, model: nn.Module, graph: DependencyGraph) -> None:
        self.criterion.prepare(model, graph)
        self._model, self._graph = model, graph
        self.cost_ = {"rounds": 0, "seconds": 0.0}

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._model is None or self._graph is None:
            raise ConfigError(
                "Rescored was not prepared: call .prepare(model, graph) first "
                "(prunekit.prune does it for you)"
            )
        clock = time.perf_counter()
        scores, rounds = rescore(
            self.criterion, self._model, self._graph, group, self._graph.tensors, self.chunks
        )
        self.cost_["rounds"] += rounds
        self.cost_["seconds"] += time.perf_counter() - clock
        return scores.float()
