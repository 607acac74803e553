"""Weight-level pruning through :func:`prunekit.prune`: ``granularity="unstructured"``/``"2:4"``.

Maps the structured call's arguments (``ratio``, ``importance``, ``scope``, ``schedule``) to
:func:`prune_weights` and returns a :class:`WeightPruneResult`. The masks stay registered
(``torch.nn.utils.parametrize``) so fine-tuning keeps pruned weights at zero; call
:meth:`WeightPruneResult.make_permanent` at the end. On CPU this saves bytes (with
:meth:`WeightPruneResult.save`), not time: dense kernels multiply the zeros too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..allocation.candidates import ignored_names
from ..errors import ConfigError
from ..importance.activation import Wanda
from ..importance.calibration import Calibration
from ..importance.gradient import Taylor
from ..importance.magnitude import Magnitude, RandomImportance
from .export import SparseExport, save_sparse
from .masks import SCOPES
from .parametrize import make_permanent
from .prune import prune_weights
from .scores import WeightCriterion, get_weight_criterion
from .summary import SparsitySummary, sparsity_summary
from .targets import as_list

__all__ = ["GRANULARITIES", "WeightPruneResult", "is_weight_level", "prune_weight_level"]

#: Named granularities; any ``"N:M"`` string (``N < M``) is accepted too.
GRANULARITIES = ("structured", "unstructured", "2:4", "4:8")
_NM = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def is_weight_level(granularity: str) -> bool:
    """Whether ``granularity`` means weight-level pruning (raises on unknown values).

    Example:
        >>> is_weight_level("structured"), is_weight_level("unstructured"), is_weight_level("1:4")
        (False, True, True)
    """
    if granularity in ("structured", "unstructured") or (
        isinstance(granularity, str) and _NM.match(granularity)
    ):
        return granularity != "structured"
    raise ConfigError(
        f"granularity={granularity!r} is unknown; use one of {GRANULARITIES} or 'N:M' "
        "(keep N of every M consecutive weights, e.g. '2:4')"
    )


@dataclass
class WeightPruneResult:
    """What ``prune(..., granularity="unstructured" | "N:M")`` returns.

    Attributes:
        model: the masked model (``parametrize`` masks: fine-tune it, zeros stay zero).
        granularity: ``"unstructured"`` or the ``"N:M"`` pattern.
        sparsities: the target weight sparsity after each step (one entry: one-shot).
    """

    model: nn.Module
    granularity: str
    sparsities: list[float] = field(default_factory=list)

    def summary(self) -> SparsitySummary:
        """Per-layer sparsity of the model as it is now (masked or baked)."""
        return sparsity_summary(self.model)

    def make_permanent(self) -> nn.Module:
        """Bake the masks into the weights (in place) and return the plain model."""
        return make_permanent(self.model)

    def save(self, path: str | os.PathLike[str]) -> SparseExport:
        """Write the weights compactly (bitmask + values); the report has bytes before/after."""
        return save_sparse(self.model, path)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: granularity, step sparsities and the summary."""
        return {
            "granularity": self.granularity,
            "sparsities": list(self.sparsities),
            "summary": self.summary().to_dict(),
        }


def _seeded_random(seed: int) -> WeightCriterion:
    def fn(name: str, module: nn.Module, w: torch.Tensor, stats: object) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + sum(map(ord, name)) + w.numel())
        return torch.rand(w.shape, generator=gen).to(w.device)

    return WeightCriterion("random", fn)


def _weight_criterion(importance: Any) -> tuple[Any, Calibration | None]:
    """A per-weight criterion (and its calibration) for a structured criterion name/object."""
    if isinstance(importance, (WeightCriterion, Mapping)):
        return importance, None
    if isinstance(importance, (Taylor, Wanda)) and not (
        isinstance(importance, Taylor) and importance.variant != "abs"
    ):
        name = "taylor" if isinstance(importance, Taylor) else "wanda"
        if importance.calibration is None:
            raise ConfigError(f"importance={importance!r} has no calibration data; pass data=")
        return name, importance.calibration
    if isinstance(importance, Magnitude):
        return "magnitude", None
    if isinstance(importance, RandomImportance):
        return _seeded_random(importance.seed), None
    if isinstance(importance, str):
        crit = get_weight_criterion(importance)
        if crit.needs:
            cls = "Taylor" if crit.name == "taylor" else "Wanda"
            raise ConfigError(
                f"importance={importance!r} needs calibration data at weight level: pass "
                f"importance=prunekit.importance.{cls}(data=loader"
                + (", loss_fn=fn)" if crit.needs_loss else ")")
            )
        return crit, None
    raise ConfigError(
        f"importance={type(importance).__name__} has no weight-level form; at weight level use "
        "'magnitude' ('l1'/'l2'), 'random', Taylor(data=, loss_fn=), Wanda(data=), a "
        "prunekit.sparsity.WeightCriterion, or a dict of per-weight scores"
    )


def _schedule(schedule: Any, ratio: float | None, steps: int | None, ramp: str) -> Any:
    """The schedule object for a weight-level cut (weights have no groups: no hierarchy)."""
    from ..schedule import Iterative, OneShot, build_schedule

    if schedule is None or schedule == "oneshot":
        return OneShot(ratio)
    if schedule == "iterative":
        if ratio is None:
            raise ConfigError("schedule='iterative' needs ratio= (the final weight sparsity)")
        return build_schedule("iterative", ratio, steps=steps, ramp=ramp)
    if isinstance(schedule, (Iterative, OneShot)):
        return schedule
    raise ConfigError(
        f"schedule={schedule!r} does not apply to weight-level pruning; use None, 'oneshot', "
        "'iterative' or an Iterative/OneShot object"
    )


def prune_weight_level(
    model: nn.Module,
    *,
    granularity: str,
    ratio: float | None = None,
    importance: Any = "magnitude",
    scope: str = "local",
    ignore: Any = (),
    inplace: bool = False,
    schedule: Any = None,
    steps: int | None = None,
    ramp: str = "cubic",
    callback: Callable[[nn.Module, int], object] | None = None,
    structured_only: list[str] | None = None,
) -> WeightPruneResult:
    """Mask single weights (``"unstructured"``: ``ratio`` of them) or N:M groups.

    Iterative schedules tighten the masks along the ramp (weights pruned earlier go first)
    and call ``callback(model, step)`` between steps; N:M is one step. ``structured_only``
    names structured-only options the caller got (``round_to``, ``target_macs`` ...): an error.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
        >>> res = prune_weight_level(net, granularity="unstructured", ratio=0.5,
        ...                          schedule="iterative", steps=2, ramp="linear")
        >>> res.sparsities, round(res.summary().weight_sparsity, 2)
        ([0.25, 0.5], 0.5)
        >>> nm = prune_weight_level(net, granularity="2:4")
        >>> bool((nm.make_permanent()[0].weight.reshape(8, 2, 4) != 0).sum(-1).le(2).all())
        True
    """
    if not is_weight_level(granularity):
        raise ConfigError("granularity='structured' is pruned by prunekit.prune, not here")
    if structured_only:
        raise ConfigError(
            f"granularity={granularity!r} masks single weights: {structured_only} apply to "
            "structured pruning only; drop them or use granularity='structured'"
        )
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r} is unknown at weight level; use one of {SCOPES}")
    crit, calibration = _weight_criterion(importance)
    ignore = sorted(ignored_names(model, as_list(ignore)))  # names hold in every copy
    if granularity != "unstructured":
        if ratio is not None or schedule not in (None, "oneshot"):
            raise ConfigError(
                f"granularity={granularity!r} fixes the sparsity (N of every M kept): drop "
                f"ratio={ratio!r} and schedule={schedule!r}"
            )
        work = prune_weights(model, pattern=granularity, importance=crit,
                             calibration=calibration, ignore=ignore, inplace=inplace)  # fmt: skip
        n, m = (int(v) for v in granularity.split(":"))
        return WeightPruneResult(work, granularity, [1.0 - n / m])
    from ..schedule import Step, drive

    sched = _schedule(schedule, ratio, steps, ramp)
    final = sched.ratio if sched.ratio is not None else ratio
    if final is None:
        raise ConfigError("granularity='unstructured' needs ratio= (the fraction of weights)")
    targets: list[float] = []
    state = {"model": model}

    def apply(step: Step) -> None:  # weight sparsity is cumulative: the ramp value itself
        targets.append(float(final) * step.fraction)
        state["model"] = prune_weights(
            state["model"], targets[-1], importance=crit, scope=scope, calibration=calibration,
            ignore=ignore, inplace=inplace or len(targets) > 1,
        )  # fmt: skip

    def between(t: int) -> None:
        assert callback is not None
        callback(state["model"], t)

    drive(sched.steps_for(model, None), apply, between if callback is not None else None)
    return WeightPruneResult(state["model"], granularity, targets)
