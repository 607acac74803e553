"""When to cut: one-shot, iterative (linear or cubic ramp), hierarchical (deepest first).

A schedule says what each step reaches (:meth:`steps`, a list of
:class:`~prunekit.schedule.Step`); :meth:`prunekit.Pruner.run` (or ``schedule.run(pruner)``)
cuts them. A schedule's own ``ratio`` (``Iterative(0.5)``) sizes the cut; without one
(``Iterative(steps=4)``) the pruner's spec is ramped: a ratio, per-module/per-group ratios
or a MACs/params budget alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from torch import nn

from ..errors import ConfigError
from .steps import Step

if TYPE_CHECKING:
    from ..result import PruneResult

__all__ = ["Callback", "OneShot", "Iterative", "Hierarchical", "ramp"]

Callback = Callable[[nn.Module, int], object]
_RAMPS = ("linear", "cubic")


def ramp(final: float, steps: int, kind: str = "cubic", initial: float = 0.0) -> list[float]:
    """Cumulative sparsity after each step ``t = 1..T``.

    ``cubic`` is Zhu & Gupta (2017): ``s_t = s_f + (s_i - s_f) (1 - t/T)^3``; ``linear``:
    ``s_t = s_i + (s_f - s_i) t/T``.

    Example:
        >>> [round(s, 4) for s in ramp(0.5, 2, "cubic")]
        [0.4375, 0.5]
        >>> ramp(0.5, 2, "linear")
        [0.25, 0.5]
    """
    if kind not in _RAMPS:
        raise ConfigError(f"ramp={kind!r} is unknown; use one of {_RAMPS}")
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps={steps!r} must be a positive int")
    if not 0.0 <= initial <= final < 1.0:
        raise ConfigError(f"need 0 <= initial ({initial}) <= final ({final}) < 1")
    out = []
    for t in range(1, steps + 1):
        if kind == "cubic":
            out.append(final + (initial - final) * (1.0 - t / steps) ** 3)
        else:
            out.append(initial + (final - initial) * t / steps)
    return out


class Runner(Protocol):
    """What a schedule's :meth:`run` needs: :class:`prunekit.Pruner` (typed here without
    importing it: a schedule says what to cut, the pruner does it)."""

    def run(self, schedule: Any = None, *, callback: Callback | None = None) -> Any: ...


@dataclass
class OneShot:
    """Cut ``ratio`` of the units in one step.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.schedule import OneShot
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> OneShot(0.5).run(prunekit.Pruner(net, torch.randn(1, 4))).model[0].out_features
        8
    """

    ratio: float | None = None
    callback: Callback | None = None

    def steps_for(self, model: nn.Module, example_inputs: Any) -> list[Step]:
        """One step, the whole target."""
        return [Step()]

    def run(self, pruner: Runner) -> PruneResult:
        """Cut on ``pruner`` (a :class:`prunekit.Pruner`)."""
        return pruner.run(self)  # type: ignore[no-any-return]


@dataclass
class Iterative:
    """Reach ``final_ratio`` of the original units in ``steps`` steps along a ramp.

    Each step re-analyses the model and re-estimates the scores (data-driven criteria are
    prepared again), then cuts the fraction of the *remaining* units that brings the total
    to the ramp's cumulative sparsity ``s_t`` (of all units of the analysed groups):
    ``r_t = 1 - (1 - s_t) * N_0 / N_left`` (``ratios()`` gives the nominal values).
    ``callback(model, step)`` runs between steps (e.g. a short fine-tune).

    Example:
        >>> import torch, prunekit
        >>> from prunekit.schedule import Iterative
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> seen = []
        >>> out = Iterative(0.5, steps=4, ramp="linear",
        ...                 callback=lambda m, t: seen.append(m[0].out_features)).run(
        ...     prunekit.Pruner(net, torch.randn(1, 4)))
        >>> seen, out.model[0].out_features
        ([14, 12, 10], 8)
    """

    final_ratio: float | None = None
    steps: int = 4
    ramp: str = "cubic"
    callback: Callback | None = None
    initial: float = 0.0

    @property
    def ratio(self) -> float | None:
        """The final ratio this schedule carries (``None``: the pruner's spec sizes it)."""
        return self.final_ratio

    def fractions(self) -> list[float]:
        """How far along to the final target each step goes (cumulative, ends at 1).

        Example:
            >>> Iterative(steps=2, ramp="linear").fractions(), Iterative(0.5, steps=2).fractions()
            ([0.5, 1.0], [0.875, 1.0])
        """
        final = 0.5 if self.final_ratio is None else self.final_ratio
        if self.final_ratio is None and self.initial:
            raise ConfigError(
                f"Iterative(initial={self.initial}) needs final_ratio= (initial is a ratio)"
            )
        cum = ramp(final, self.steps, self.ramp, self.initial)
        return [min(1.0, s / final) if final else 0.0 for s in cum]

    def steps_for(self, model: nn.Module, example_inputs: Any) -> list[Step]:
        """``steps`` steps along the ramp."""
        f = self.fractions()
        return [Step(v, f[i - 1] if i else 0.0) for i, v in enumerate(f)]

    def ratios(self) -> list[float]:
        """The nominal per-step ratios (of the units left before each step)."""
        if self.final_ratio is None:
            raise ConfigError("Iterative.ratios() needs final_ratio= (the final ratio)")
        cum = ramp(self.final_ratio, self.steps, self.ramp, self.initial)
        prev, out = 0.0, []
        for s in cum:
            out.append(1.0 - (1.0 - s) / (1.0 - prev))
            prev = s
        return out

    def run(self, pruner: Runner) -> PruneResult:
        """Cut on ``pruner`` (a :class:`prunekit.Pruner`)."""
        return pruner.run(self)  # type: ignore[no-any-return]


@dataclass
class Hierarchical:
    """Deepest groups first, moving toward the input, one stage at a time.

    The groups (in the order the graph lists them, inputs first) are split into ``stages``
    chunks; stage 1 cuts ``ratio`` of the deepest chunk's units, stage 2 the next one, and so
    on, re-analysing and re-scoring before each stage; ``callback`` runs between stages.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.schedule import Hierarchical
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
        ...                           torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> out = Hierarchical(0.5, stages=2).run(prunekit.Pruner(net, torch.randn(1, 4)))
        >>> [list(p.removed) for p in out.plan.steps]
        [['2.weight:0'], ['0.weight:0']]
    """

    ratio: float | None = None
    stages: int = 2
    callback: Callback | None = None

    def steps_for(self, model: nn.Module, example_inputs: Any) -> list[Step]:
        """One step per stage, each the whole target of its chunk of groups."""
        from ..analysis import analyze

        if not isinstance(self.stages, int) or self.stages < 1:
            raise ConfigError(f"stages={self.stages!r} must be a positive int")
        keys = [g.key for g in analyze(model, example_inputs).groups]
        n = max(1, min(self.stages, len(keys)))
        chunks = [keys[i * len(keys) // n : (i + 1) * len(keys) // n] for i in range(n)]
        return [Step(only=frozenset(c)) for c in reversed(chunks)]

    def run(self, pruner: Runner) -> PruneResult:
        """Cut on ``pruner`` (a :class:`prunekit.Pruner`)."""
        return pruner.run(self)  # type: ignore[no-any-return]
