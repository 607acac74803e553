"""Calibration health: is this calibration data able to rank units at all?

Every data-driven criterion runs :func:`check_calibration` once it has seen its calibration
data, before any group is scored. Three things make scores meaningless without any error
being raised:

* **a loss near zero, or gradients that vanish relative to the weights** — the typical
  case is an overfit model calibrated on its own training data (a digits MLP at 100% train
  accuracy has a training loss of 0.001 and ``||g|| / ||w||`` of 0.0004-0.001, against 0.09
  and 0.03-0.05 on held-out samples). Gradients, gradient-weight products and loss changes
  are then noise, and the measured cuts fall below random (docs/criteria_defaults.md).
  The fix: pass held-out batches, or use an activation or loss-contribution criterion,
  which reads the model's outputs rather than its (vanishing) errors.
* **too few samples for the number of units** — fewer calibration samples than the units
  of the widest group leave most scores (and every Gram/Hessian) underdetermined.
* **non-finite values** in the statistics or losses: raised as
  :class:`~prunekit.errors.NonFiniteError` (scores computed from them would be NaN).

The first two warn with :class:`~prunekit.errors.CalibrationWarning`; the thresholds are
the module constants :data:`LOSS_FLOOR` and :data:`GRAD_RATIO_FLOOR`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .._modelio import flatten_tensors
from ..checks import non_finite
from ..errors import CalibrationWarning, NonFiniteError
from ..graph.dependency import DependencyGraph
from .stats import CalibrationStats

__all__ = [
    "GRAD_RATIO_FLOOR",
    "LOSS_FLOOR",
    "CalibrationHealth",
    "check_calibration",
    "count_samples",
    "gradient_ratio",
]

LOSS_FLOOR = 1e-2
"""A mean calibration loss below this is "near zero" (cross-entropy 0.01: 99% confidence)."""

GRAD_RATIO_FLOOR = 5e-3
"""``sqrt(E_batch ||g||^2) / ||w||`` over the pruned tensors below this: vanishing gradients."""

_FIX = (
    "pass held-out batches (data the model was not trained on), or use an activation or "
    "loss-contribution criterion (prunekit.importance.APoZ, LossContribution)"
)


@dataclass
class CalibrationHealth:
    """What :func:`check_calibration` saw, and the problems it warned about.

    Example:
        >>> h = CalibrationHealth("Taylor", samples=250, units=96, mean_loss=0.001)
        >>> [p.split(":")[0] for p in h.problems()]
        ['loss near zero']
    """

    owner: str
    samples: int
    units: int
    mean_loss: float | None = None
    grad_ratio: float | None = None
    warned: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """One line per problem, each with its fix."""
        out = []
        if self.mean_loss is not None and abs(self.mean_loss) < LOSS_FLOOR:
            out.append(
                f"loss near zero: the mean calibration loss is {self.mean_loss:.3g} (< "
                f"{LOSS_FLOOR:g}), as on an overfit model's training data; its gradients and "
                f"loss changes are noise: {_FIX}"
            )
        if self.grad_ratio is not None and self.grad_ratio < GRAD_RATIO_FLOOR:
            out.append(
                f"vanishing gradients: ||g|| / ||w|| is {self.grad_ratio:.3g} (< "
                f"{GRAD_RATIO_FLOOR:g}) on the calibration batches: {_FIX}"
            )
        if 0 < self.samples < self.units:
            out.append(
                f"too few samples: {self.samples} calibration samples for groups of up to "
                f"{self.units} units leave most scores underdetermined: pass at least "
                f"{self.units} samples (more batches, or batches=None)"
            )
        return out


def count_samples(batches: Iterable[Any], inputs: Any) -> int:
    """Samples in ``batches``: dim 0 of each batch's first input tensor (0 if none)."""
    total = 0
    for b in batches:
        tensors = flatten_tensors(inputs(b))
        if tensors and tensors[0].dim() > 0:
            total += int(tensors[0].shape[0])
    return total


def gradient_ratio(
    model: nn.Module, graph: DependencyGraph | None, stats: CalibrationStats
) -> float | None:
    """``sqrt(mean over batches of ||g||^2) / ||w||`` over the tensors the stats tracked
    (``None`` without gradient stats, or with all-zero weights)."""
    if "grad_norm_sq" not in stats.counts or stats.batches < 1:
        return None
    names = {m.name for g in graph.groups for m in g.members} if graph is not None else None
    wsq = sum(
        float(p.detach().double().pow(2).sum())
        for n, p in model.named_parameters()
        if names is None or n in names
    )
    if wsq <= 0.0:
        return None
    return math.sqrt(stats.counts["grad_norm_sq"] / stats.batches) / math.sqrt(wsq)


def _check_finite(owner: str, stats: CalibrationStats | None, mean_loss: float | None) -> None:
    if mean_loss is not None and not math.isfinite(mean_loss):
        raise NonFiniteError(
            f"{owner}: the mean calibration loss is {mean_loss}; check loss_fn and the "
            "batches (log of 0, division by 0, overflow), or clean the data"
        )
    if stats is None:
        return
    bad = non_finite(sorted(stats.sums.items()))
    bad += [f"{k} ({v})" for k, v in sorted(stats.counts.items()) if not math.isfinite(v)]
    if bad:
        raise NonFiniteError(
            f"{owner}: the calibration statistics {', '.join(bad[:3])} hold NaN or infinity "
            "(activations or gradients overflowed on the calibration batches); every score "
            "read from them would be NaN: lower the learning rate that produced the weights, "
            "check the inputs' scale, or run the calibration in float32"
        )


def check_calibration(
    owner: str,
    *,
    samples: int,
    graph: DependencyGraph | None,
    model: nn.Module | None = None,
    stats: CalibrationStats | None = None,
    mean_loss: float | None = None,
) -> CalibrationHealth:
    """Check calibration data before scoring: raise on non-finite values, warn (with the fix)
    about a loss near zero, vanishing gradients, or fewer samples than units.

    Args:
        owner: the criterion's name, for the messages.
        samples: calibration samples seen (:func:`count_samples`).
        graph: the analysed graph (its widest group sets the unit count).
        model: the model the stats were collected on (for the gradient/weight ratio).
        stats: the collected stats (their sums are checked for NaN/inf; with gradients,
            the ratio is read from them).
        mean_loss: the mean calibration loss per batch (default: the stats' one, if a loss
            was computed).

    Raises:
        NonFiniteError: the loss or a statistic is NaN or infinite.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     h = check_calibration("Taylor", samples=250, graph=None, mean_loss=0.002)
        >>> "pass held-out batches" in str(seen[0].message), h.warned[0][:14]
        (True, 'loss near zero')
    """
    if mean_loss is None and stats is not None and stats.batches and stats.loss_sum != 0.0:
        mean_loss = stats.mean_loss
    _check_finite(owner, stats, mean_loss)
    units = max((g.num_units for g in graph.groups), default=0) if graph is not None else 0
    ratio = gradient_ratio(model, graph, stats) if model is not None and stats else None
    health = CalibrationHealth(owner, samples, units, mean_loss, ratio)
    health.warned = health.problems()
    for line in health.warned:
        warnings.warn(f"{owner}: calibration data: {line}", CalibrationWarning, stacklevel=3)
    return health
