"""The base of the set-aware criteria: calibration batches in, each consumer's inverse
damped Hessian out, one group (one layer's Gram) at a time.

For a consumer ``Y = X W^T (+ b)`` of a group, the Hessian of the squared output error in
its weights is ``H = 2 X^T X``; the criteria use its per-row mean, damped as SparseGPT
does: ``H = X^T X / rows + damp * mean(diag) * I`` (the bias column, when the layer has one,
is refit but not damped). Scores are then mean squared output errors per design row, in
the layer's output units, so groups are comparable under ``scope="global"``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from .. import distributed
from .._modelio import to_device
from ..errors import ConfigError, NonFiniteError
from ..graph.dependency import DependencyGraph, Group
from ..lstsq import damped, inverse, obs_cost, obs_costs, obs_remove
from .base import normalize_scores
from .consumers import Consumer, collect_grams, consumers_of
from .datadriven import DataCriterion
from .health import check_calibration, count_samples
from .stats import CalibrationStats

__all__ = ["SetAwareCriterion", "greedy_scores"]


@dataclass
class SetAwareCriterion(DataCriterion):
    """Shared machinery of :class:`~prunekit.importance.OBS` and
    :class:`~prunekit.importance.Reconstruction`; subclasses implement :meth:`score_consumers`.

    ``cost_`` reports what scoring took: ``forward_passes`` (calibration batches run, one
    pass per group whose consumers were not measured yet), ``gram_rows``, ``solves``
    (Hessian inversions and downdates) and ``seconds``.
    """

    damp: float = 0.01
    requires_data: ClassVar[bool] = True
    cost_: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.damp, bool) or not isinstance(self.damp, (int, float)) or self.damp < 0:
            raise ConfigError(f"{type(self).__name__} damp={self.damp!r} must be a number >= 0")
        super().__post_init__()
        self._model: nn.Module | None = None
        self._batches: list[Any] = []
        self._hinv: dict[str, torch.Tensor | None] = {}

    def prepare(self, model: nn.Module, graph: DependencyGraph) -> None:
        """Take the calibration batches and check them; Hessians are built lazily per group."""
        if self.calibration is None:
            raise ConfigError(
                f"{type(self).__name__} has no calibration data; pass it as prunekit."
                f"importance.{type(self).__name__}(data=loader, batches=8)"
            )
        self._model, self.modules_ = model, dict(model.named_modules())
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self._batches = [to_device(b, device) for b in self.calibration.batch_list()]
        self._hinv = {}
        self.cost_ = {"forward_passes": 0, "gram_rows": 0, "solves": 0, "seconds": 0.0}
        samples = int(  # every rank's batches under torchrun
            distributed.all_reduce_scalars([count_samples(self._batches, self.calibration.inputs)])[
                0
            ]
        )
        check_calibration(type(self).__name__, samples=samples, graph=graph)

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._model is None:
            raise ConfigError(
                f"{type(self).__name__} was not prepared: call .prepare(model, graph) first "
                "(prunekit.prune does it for you)"
            )
        clock = time.perf_counter()
        scores = self.score(group, tensors, CalibrationStats())
        self.cost_["seconds"] += time.perf_counter() - clock
        return normalize_scores(scores, self.normalize)

    def score(
        self, group: Group, tensors: dict[str, torch.Tensor], stats: CalibrationStats
    ) -> torch.Tensor:
        """Raw scores of ``group``'s units from its consumers' inverse Hessians."""
        pairs = self.hessians(group)
        if not pairs:
            return _uniform(type(self).__name__, group)
        return self.score_consumers(group, pairs).float()

    def score_consumers(
        self, group: Group, pairs: list[tuple[Consumer, torch.Tensor]]
    ) -> torch.Tensor:
        """Scores from ``(consumer, H^-1)`` pairs; subclasses implement this."""
        raise NotImplementedError

    def hessians(self, group: Group) -> list[tuple[Consumer, torch.Tensor]]:
        """``(consumer, H^-1)`` for every consumer of ``group`` (identity where its input is
        never seen, with a warning); measures the consumers not measured yet in one pass."""
        assert self._model is not None and self.calibration is not None
        cons = consumers_of(group, self.modules_)
        todo = [c for c in cons if c.module not in self._hinv]
        if todo:
            grams = collect_grams(self._model, todo, self._batches, self.calibration.inputs)
            self.cost_["forward_passes"] += len(self._batches)
            for c in todo:
                eq = grams.get(c.module)
                self._hinv[c.module] = None if eq is None else self._inverse(c, eq.a, eq.rows)
        out = []
        for c in cons:
            hinv = self._hinv[c.module]
            if hinv is None:
                _warn_unseen(type(self).__name__, group, c.module)
                hinv = torch.eye(c.weight.shape[1], dtype=torch.float64)
            out.append((c, hinv))
        return out

    def _inverse(self, c: Consumer, gram: torch.Tensor | None, rows: int) -> torch.Tensor:
        assert gram is not None
        if not bool(torch.isfinite(gram).all()):
            raise NonFiniteError(
                f"{type(self).__name__}: the inputs of layer {c.module!r} hold NaN or infinity "
                "on the calibration batches; clean the data or check the layers before it"
            )
        self.cost_["gram_rows"] += rows
        self.cost_["solves"] += 1
        h = damped(gram / max(rows, 1), self.damp, bias=c.bias)
        return inverse(h.cpu())


def greedy_scores(
    group: Group, pairs: list[tuple[Consumer, torch.Tensor]], per: int, cost: dict[str, float]
) -> torch.Tensor:
    """Greedy removal with the exact least-squares refit (sequential OBS), ``per`` units a
    round: each unit's score is the consumers' total refit error once it is removed."""
    n = group.num_units
    state = [(c.cols, c.weight.clone(), hinv.clone()) for c, hinv in pairs]
    alive = torch.ones(n, dtype=torch.bool)
    scores = torch.zeros(n, dtype=torch.float64)
    total = 0.0
    while bool(alive.any()):
        ids = alive.nonzero().flatten()
        costs = torch.stack([obs_costs(w, hinv, cols[ids]) for cols, w, hinv in state])
        picks = ids[costs.sum(0).argsort(stable=True)[:per]]
        for k, (cols, w, hinv) in enumerate(state):
            drop = cols[picks].reshape(-1)
            total += obs_cost(w, hinv, drop)  # the joint refit error of this round
            state[k] = (cols, *obs_remove(w, hinv, drop))
            cost["solves"] += 1
        scores[picks] = total
        alive[picks] = False
    return scores


def _warn_unseen(owner: str, group: Group, module: str) -> None:
    warnings.warn(
        f"{owner}: group {group.key}: the input of consumer layer {module!r} was never seen "
        "(its weight is used by a functional op inside a parent module); its columns are "
        "scored with an identity Hessian (||W_u||^2). Use another criterion for this group, "
        "or exclude it with ignore=",
        UserWarning,
        stacklevel=4,
    )


def _uniform(owner: str, group: Group) -> torch.Tensor:
    warnings.warn(
        f"{owner}: group {group.key} has no consumer layer whose input columns it owns; its "
        f"{group.num_units} units get equal scores. Use another criterion for it or exclude "
        "it with ignore=",
        UserWarning,
        stacklevel=4,
    )
    return torch.ones(group.num_units)
