"""The base of data-driven criteria: calibration data in, a ``prepare`` hook, stats out."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError
from ..graph.dependency import DependencyGraph, Group
from .base import NORMALIZATIONS, Criterion, check_choice, normalize_scores
from .calibration import Calibration, LossFn
from .health import check_calibration
from .stats import GRAD_STATS, CalibrationStats

__all__ = ["DataCriterion", "uniform_fallback"]


@dataclass
class DataCriterion(Criterion, ABC):
    """Base class: holds its calibration data and computes scores on the analysed model.

    Give either ``data`` (+ ``loss_fn``, ``batches``), a shared ``calibration`` object (so
    several criteria reuse one pass), or precomputed ``stats`` (e.g. reduced across
    processes). :func:`prunekit.prune` calls :meth:`prepare` on the analysed copy once before
    scoring; call it yourself when scoring groups directly.
    """

    data: Iterable[Any] | None = None
    loss_fn: LossFn | None = None
    batches: int | None = None
    calibration: Calibration | None = None
    stats: CalibrationStats | None = None
    normalize: str = "none"
    stats_: CalibrationStats | None = field(default=None, init=False, repr=False)
    modules_: dict[str, nn.Module] = field(default_factory=dict, init=False, repr=False)

    NEEDS: ClassVar[tuple[str, ...]] = ()
    requires_data: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_choice(type(self).__name__, "normalize", self.normalize, NORMALIZATIONS)
        if self.calibration is None and self.data is not None:
            if self.loss_fn is None and set(self.needs()) & set(GRAD_STATS):
                raise ConfigError(
                    f"{type(self).__name__} needs gradients: pass loss_fn=(output, batch) -> "
                    "scalar loss together with data="
                )
            self.calibration = Calibration(self.data, self.loss_fn, self.batches)
            self.calibration.owner = type(self).__name__
        if self.calibration is not None:
            self.calibration.request(*self.needs())
        self.stats_ = self.stats

    def needs(self) -> tuple[str, ...]:
        """The calibration stats this criterion reads."""
        return self.NEEDS

    def prepare(self, model: nn.Module, graph: DependencyGraph) -> None:
        """Collect (or reuse) the calibration stats of ``model``, the model ``graph`` describes."""
        self.modules_ = dict(model.named_modules())
        if self.calibration is not None:
            self.stats_ = self.calibration.ensure(model, graph)
        elif self.stats is None:
            raise ConfigError(
                f"{type(self).__name__} has no calibration data; pass it as "
                f"prunekit.importance.{type(self).__name__}(data=loader, loss_fn=fn, batches=4)"
            )
        if self.stats_ is not None:  # before any group is scored (health.py)
            samples = int(self.stats_.counts.get("samples", 0))
            check_calibration(type(self).__name__, samples=samples, graph=graph, model=model,
                              stats=self.stats_)  # fmt: skip

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.stats_ is None:
            raise ConfigError(
                f"{type(self).__name__} was not prepared: call .prepare(model, graph) first "
                "(prunekit.prune does it for you)"
            )
        return normalize_scores(self.score(group, tensors, self.stats_), self.normalize)

    @abstractmethod
    def score(
        self, group: Group, tensors: dict[str, torch.Tensor], stats: CalibrationStats
    ) -> torch.Tensor:
        """Raw (unnormalised) scores of ``group``'s units; subclasses implement this."""


def uniform_fallback(owner: str, group: Group, what: str) -> torch.Tensor:
    """Equal scores for a group the criterion cannot see, with a warning that says why."""
    warnings.warn(
        f"{owner}: group {group.key} has no {what}; its {group.num_units} units get equal "
        "scores. Use another criterion for it or exclude it with ignore=",
        UserWarning,
        stacklevel=3,
    )
    return torch.ones(group.num_units)
