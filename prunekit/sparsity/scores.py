"""Per-weight scores (higher = keep): magnitude, Wanda, first-order Taylor, random.

A criterion maps one layer's weight to a score tensor of the same shape. Data-driven ones
read the raw sums of a :class:`~prunekit.importance.Calibration` pass, keyed by the names
of a model without parametrizations (masks already applied are baked into the weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, RegistryError
from ..importance.stats import CalibrationStats
from .targets import input_dim_of

__all__ = [
    "WeightCriterion",
    "get_weight_criterion",
    "register_weight_criterion",
    "WEIGHT_CRITERIA",
]

ScoreFn = Callable[[str, nn.Module, torch.Tensor, "CalibrationStats | None"], torch.Tensor]


@dataclass(frozen=True)
class WeightCriterion:
    """A named per-weight score: ``fn(module name, module, weight, stats) -> scores``.

    ``needs`` lists the calibration stats it reads (``()`` for data-free criteria, see
    :data:`prunekit.importance.ACT_STATS` and ``GRAD_STATS``); ``needs_loss`` says whether
    those need a ``loss_fn``.

    Example:
        >>> import torch
        >>> from prunekit.sparsity import prune_weights
        >>> squared = WeightCriterion("squared", lambda name, mod, w, stats: w.detach() ** 2)
        >>> net = prune_weights(torch.nn.Linear(4, 2), 0.5, importance=squared)
        >>> int((net.weight == 0).sum())
        4
    """

    name: str
    fn: ScoreFn
    needs: tuple[str, ...] = ()
    needs_loss: bool = False

    def __call__(
        self, name: str, module: nn.Module, weight: torch.Tensor, stats: CalibrationStats | None
    ) -> torch.Tensor:
        if self.needs and stats is None:
            raise ConfigError(
                f"weight criterion {self.name!r} needs calibration data: pass data=loader"
                + (" and loss_fn=(output, batch) -> loss" if self.needs_loss else "")
            )
        return self.fn(name, module, weight, stats)


def _need(stats: CalibrationStats | None, name: str) -> CalibrationStats:
    if stats is None:
        raise ConfigError(f"weight criterion {name!r} needs calibration stats; pass data=")
    return stats


def _magnitude(name: str, module: nn.Module, w: torch.Tensor, stats: object) -> torch.Tensor:
    return w.detach().float().abs()


def _wanda(
    name: str, module: nn.Module, w: torch.Tensor, stats: CalibrationStats | None
) -> torch.Tensor:
    stats = _need(stats, "wanda")
    dim = input_dim_of(module, w)
    if dim is None or not stats.has("act_sq", name):
        raise ConfigError(
            f"wanda: no input activations were recorded for layer {name!r} (its input is not "
            "a float tensor with one feature per weight input); leave it out with ignore="
        )
    rms = stats.mean("act_sq", name).sqrt()
    shape = [1] * w.dim()
    shape[dim] = -1
    return w.detach().float().abs() * rms.reshape(shape).to(w.device)


def _taylor(
    name: str, module: nn.Module, w: torch.Tensor, stats: CalibrationStats | None
) -> torch.Tensor:
    stats = _need(stats, "taylor")
    key = f"{name}.weight" if name else "weight"
    if not stats.has("wg", key):
        raise ConfigError(f"taylor: no gradient was recorded for {key!r}; is it trainable?")
    return stats.mean("wg", key).abs().to(w.device)


def _random(name: str, module: nn.Module, w: torch.Tensor, stats: object) -> torch.Tensor:
    gen = torch.Generator().manual_seed(sum(map(ord, name)) * 1_000_003 + w.numel())
    return torch.rand(w.shape, generator=gen).to(w.device)


WEIGHT_CRITERIA: dict[str, WeightCriterion] = {}


def register_weight_criterion(criterion: WeightCriterion, *, override: bool = False) -> None:
    """Register a per-weight criterion under ``criterion.name`` (twice raises).

    Example:
        >>> register_weight_criterion(WeightCriterion("cube", lambda n, m, w, s: w.abs() ** 3))
        >>> get_weight_criterion("cube").name
        'cube'
        >>> register_weight_criterion(WeightCriterion("cube", lambda n, m, w, s: w.abs()))
        Traceback (most recent call last):
        ...
        prunekit.errors.RegistryError: weight criterion 'cube' is already registered; pass override=True
        >>> _ = WEIGHT_CRITERIA.pop("cube")
    """
    if criterion.name in WEIGHT_CRITERIA and not override:
        raise RegistryError(
            f"weight criterion {criterion.name!r} is already registered; pass override=True"
        )
    WEIGHT_CRITERIA[criterion.name] = criterion


def get_weight_criterion(spec: str | WeightCriterion) -> WeightCriterion:
    """A criterion by name (``magnitude`` = ``l1`` = ``l2``, ``wanda``, ``taylor``, ``random``).

    Example:
        >>> get_weight_criterion("l1").name
        'magnitude'
    """
    if isinstance(spec, WeightCriterion):
        return spec
    if isinstance(spec, str):
        key = {"l1": "magnitude", "l2": "magnitude"}.get(spec.lower(), spec.lower())
        if key in WEIGHT_CRITERIA:
            return WEIGHT_CRITERIA[key]
    raise RegistryError(
        f"unknown weight criterion {spec!r}; valid: {sorted(WEIGHT_CRITERIA)} (or l1/l2), a "
        "WeightCriterion, or a dict of precomputed scores per layer"
    )


register_weight_criterion(WeightCriterion("magnitude", _magnitude))
register_weight_criterion(WeightCriterion("wanda", _wanda, ("act_sq",)))
register_weight_criterion(WeightCriterion("taylor", _taylor, ("wg",), needs_loss=True))
register_weight_criterion(WeightCriterion("random", _random))
