"""What a search does when left to its defaults: the strategies it compares, and how it
finishes every candidate before the caller's ``recover``.

*Strategies.* Without ``strategies=`` a search compares L2 magnitude ranked globally and
locally and, when it is given calibration data (``data=``), a data-driven criterion in both
scopes too (:func:`default_strategies`). The data-driven criterion is
:class:`~prunekit.importance.Reconstruction` (greedy least-squares set selection): it ranks
sets of units by what a least-squares refit of their consumers cannot recover, which is what
the compensation below then does, and it needs no loss (docs/search_defaults.md has the
measurement behind the choice).

*Finishing.* Right after each cut, before ``after_cut`` and ``recover``, a candidate gets
least-squares compensation (:func:`prunekit.recovery.compensate`: its layers refit to the
unpruned model's outputs) and fresh BatchNorm statistics
(:func:`prunekit.recovery.reestimate_bn`), both on ``data`` (:class:`Finishing`). With
``compensate="auto"`` compensation runs when ``data`` is given and the model has a layer its
surgery handler can refit.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from ..errors import ConfigError, RecoveryError
from ..importance import Importance, Reconstruction
from ..recovery import batchnorm_layers, compensate, reestimate_bn
from ..recovery.reconstruct import geometry_of
from ..surgery import RefitGeometry
from .spec import Strategy

__all__ = [
    "COMPENSATE_CHOICES",
    "DATA_DRIVEN",
    "Finisher",
    "Finishing",
    "default_strategies",
    "guarded_recover",
    "refittable_layers",
    "resolve_finishing",
]

DATA_DRIVEN = "reconstruction"
"""The data-driven criterion of the default strategies (:func:`default_strategies`)."""

COMPENSATE_CHOICES = ("auto", True, False)

COMPENSATE_BATCHES = 8
"""Calibration batches each compensation refit reads (:func:`prunekit.recovery.compensate`)."""


def default_strategies(data: Iterable[Any] | None, batches: int = 8) -> tuple[Strategy, ...]:
    """The strategies a search compares when none are given.

    L2 magnitude, ranked globally and locally; with calibration ``data`` also the data-driven
    criterion (:data:`DATA_DRIVEN`, one object shared by both scopes, reading at most
    ``batches`` batches), globally and locally.

    Example:
        >>> [s.name for s in default_strategies(None)]
        ['l2-global', 'l2-local']
        >>> import torch
        >>> [s.name for s in default_strategies([torch.randn(8, 4)])][2:]
        ['reconstruction-global', 'reconstruction-local']
    """
    out = [Strategy(importance="l2", scope="global"), Strategy(importance="l2", scope="local")]
    if data is not None:
        crit: Importance = Reconstruction(data=data, batches=batches)
        out += [Strategy(f"{DATA_DRIVEN}-{scope}", crit, scope) for scope in ("global", "local")]
    return tuple(out)


def refittable_layers(model: nn.Module) -> list[str]:
    """Names of the layers :func:`~prunekit.recovery.compensate` can refit (their surgery
    handler gives a refit geometry).

    Example:
        >>> import torch
        >>> refittable_layers(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()))
        ['0']
    """
    return [n for n, m in model.named_modules() if isinstance(geometry_of(m), RefitGeometry)]


@dataclass(frozen=True)
class Finishing:
    """How the search finishes every cut before ``after_cut`` and ``recover``.

    Attributes:
        compensate: least-squares compensation against the model before the cut.
        reestimate_bn: BatchNorm running statistics re-estimated on ``data``.
        asked: the ``compensate=`` argument as given (``"auto"``, ``True`` or ``False``).
        reason: why compensation is on or off.
        batches: calibration batches each compensation reads.
        guard_recover: ``recover`` is kept only if it does not lower ``metric``; otherwise
            the candidate as it was before ``recover`` is measured (and returned).

    Example:
        >>> Finishing(False, False, "auto", "no data=").order()
        ['cut', 'after_cut', 'recover']
    """

    compensate: bool
    reestimate_bn: bool
    asked: str | bool = "auto"
    reason: str = ""
    batches: int = COMPENSATE_BATCHES
    guard_recover: bool = False

    @property
    def active(self) -> bool:
        return self.compensate or self.reestimate_bn

    def order(self) -> list[str]:
        """The steps every candidate goes through, in order."""
        steps = ["cut"] + ["compensate"] * self.compensate + ["reestimate_bn"] * self.reestimate_bn
        return steps + ["after_cut", "recover"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description, with :meth:`order`."""
        return {**asdict(self), "order": self.order()}


def resolve_finishing(
    model: nn.Module, data: Any, asked: Any, guard_recover: bool = False
) -> Finishing:
    """Decide the finishing of a search on ``model`` (``asked``: the ``compensate=`` argument;
    ``guard_recover``: see :class:`Finishing`).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        >>> resolve_finishing(net, [torch.randn(4, 2)], "auto").order()
        ['cut', 'compensate', 'after_cut', 'recover']
        >>> resolve_finishing(net, None, "auto").reason
        'compensation off: no data= to refit on'
    """
    if not any(asked is c for c in COMPENSATE_CHOICES) and asked != "auto":
        raise ConfigError(
            f"search: compensate={asked!r} must be 'auto', True or False (least-squares "
            "compensation of every candidate before recover)"
        )
    if not isinstance(guard_recover, bool):
        raise ConfigError(f"search: guard_recover={guard_recover!r} must be True or False")
    return dataclasses.replace(_decide(model, data, asked), guard_recover=guard_recover)


def _decide(model: nn.Module, data: Any, asked: Any) -> Finishing:
    has_bn = data is not None and bool(batchnorm_layers(model))
    if asked is False:
        return Finishing(False, has_bn, False, "compensation off: compensate=False")
    if data is None:
        if asked is True:
            raise ConfigError(
                "search: compensate=True needs calibration batches to refit on; pass "
                "data=train_loader (a few batches of training data), or compensate=False"
            )
        return Finishing(False, False, "auto", "compensation off: no data= to refit on")
    layers = refittable_layers(model)
    if not layers:
        if asked is True:
            raise ConfigError(
                f"search: compensate=True, but no layer of {type(model).__name__} can be refit "
                "(no Linear/Conv1d/Conv2d with groups=1); pass compensate='auto' or False"
            )
        return Finishing(False, has_bn, "auto", "compensation off: no layer can be refit")
    why = f"compensation on: {len(layers)} refittable layers"
    return Finishing(True, has_bn, asked, why)


@dataclass
class Finisher:
    """Applies a :class:`Finishing` to one cut model, in place.

    ``reference`` is the model the cut was made from (the unpruned model for one step). A
    compensation that cannot tell which units a layer kept is skipped for that candidate
    and counted in ``skipped`` (the BN re-estimation still runs).
    """

    finishing: Finishing
    data: Any
    skipped: list[str] = field(default_factory=list)
    reports: int = 0

    def __call__(self, model: nn.Module, reference: nn.Module) -> None:
        if self.finishing.compensate:
            try:
                compensate(model, reference, self.data, batches=self.finishing.batches)
                self.reports += 1
            except RecoveryError as exc:
                self.skipped.append(str(exc)[:200])
        if self.finishing.reestimate_bn:
            reestimate_bn(model, self.data)

    def note(self) -> list[str]:
        """A note when compensation was skipped on some candidates."""
        if not self.skipped:
            return []
        return [
            f"compensation skipped on {len(self.skipped)} candidate(s) (first: "
            f"{self.skipped[0]}); they were measured with BN re-estimation only"
        ]


Metric = Callable[[nn.Module], float]


def guarded_recover(
    recover: Callable[[nn.Module], Any], model: nn.Module, measure: Callable[[nn.Module], float]
) -> tuple[nn.Module, bool, float]:
    """Run ``recover`` on ``model``; keep its result only if ``measure`` does not drop.

    Returns the model to keep, whether it is the recovered one, and its measure. The model
    before ``recover`` is copied first (``recover`` may work in place), and its training flag
    is kept across the measurement.

    Example:
        >>> net = nn.Linear(2, 1)
        >>> def spoil(m):
        ...     nn.init.zeros_(m.weight)
        >>> size = lambda m: float(m.weight.abs().sum())
        >>> kept, recovered, value = guarded_recover(spoil, net, size)
        >>> recovered, kept is net, value > 0, value == size(kept)
        (False, False, True, True)
    """
    was_training = model.training
    before = measure(model)
    model.train(was_training)
    saved = copy.deepcopy(model)
    out = recover(model)
    recovered = out if isinstance(out, nn.Module) else model
    after = measure(recovered)
    if after >= before:
        return recovered, True, after
    return saved, False, before
