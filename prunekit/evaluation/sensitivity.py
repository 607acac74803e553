"""Layer sensitivity: prune each group alone at several ratios and measure a metric.

The result says how much a user metric (accuracy, F1, minus a loss ...) drops when one
group is cut by 10%, 20%, ... with everything else intact, and turns that into per-group
ratios for a global budget that cut more from the insensitive groups
(:meth:`Sensitivity.allocate`, fed to ``prunekit.prune(..., group_ratios=...)``).

Cost: one ``eval_fn`` call per group and distinct cut size (at most ``groups x ratios``),
each on a fresh copy of the model; the model is analysed once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..allocation.candidates import ignored_names, is_ignored, producer_modules
from ..allocation.rules import clamp_removal, lowest
from ..allocation.sensitivity import SensitivityAllocation, allocate_by_sensitivity
from ..analysis import analyze
from ..errors import ConfigError
from ..graph.dependency import DependencyGraph, Group
from ..importance import Importance, get_importance
from ..plan import PruningPlan
from ._runtime import finite_metric

__all__ = ["Sensitivity", "analyze_sensitivity", "DEFAULT_RATIOS"]

DEFAULT_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SENSITIVITY_FORMAT = 1


@dataclass
class Sensitivity:
    """Measured sensitivity of every analysed group (plain data; see :meth:`to_dict`).

    Attributes:
        base: the metric of the unpruned model.
        ratios: the ratios tried (fractions of each group's units).
        sizes: units per group key.
        modules: per group key, the modules whose own outputs are its units.
        metrics: per group key, ``{ratio: metric}`` with that group alone pruned.
        removed: per group key, ``{ratio: units removed}`` (``floor(ratio * size)``, keeping
            at least one unit; 0 means the model was not pruned and ``metric == base``).
        meta: how it was measured (importance criterion ...).

    Example:
        >>> s = Sensitivity(0.9, [0.5], {"fc.weight:0": 8}, {"fc.weight:0": ["fc"]},
        ...                 {"fc.weight:0": {0.5: 0.8}}, {"fc.weight:0": {0.5: 4}})
        >>> d = s.to_dict()
        >>> d["groups"]["fc.weight:0"]["metrics"], round(d["groups"]["fc.weight:0"]["drops"]["0.5"], 6)
        ({'0.5': 0.8}, 0.1)
        >>> Sensitivity.from_dict(d) == s
        True
    """

    base: float
    ratios: list[float]
    sizes: dict[str, int]
    modules: dict[str, list[str]]
    metrics: dict[str, dict[float, float]]
    removed: dict[str, dict[float, int]]
    meta: dict[str, Any] = field(default_factory=dict)

    def drops(self) -> dict[str, dict[float, float]]:
        """Per group key, ``{ratio: base - metric}`` (positive: the metric got worse)."""
        return {k: {r: self.base - m for r, m in c.items()} for k, c in self.metrics.items()}

    def allocate(self, target_ratio: float) -> SensitivityAllocation:
        """Per-group ratios removing ``target_ratio`` of all measured units, cutting more
        where the measured drop is smaller (see :mod:`prunekit.allocation.sensitivity`).

        Example:
            >>> s = Sensitivity(1.0, [0.5], {"a": 4, "b": 4}, {"a": ["fc1"], "b": ["fc2"]},
            ...                 {"a": {0.5: 0.99}, "b": {0.5: 0.6}}, {"a": {0.5: 2}, "b": {0.5: 2}})
            >>> s.allocate(0.25).group_ratios
            {'a': 0.5, 'b': 0.0}
        """
        points = {
            key: {self.removed[key][r]: self.base - m for r, m in curve.items()}
            for key, curve in self.metrics.items()
        }
        return allocate_by_sensitivity(points, self.sizes, target_ratio)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (ratios become string keys, e.g. ``"0.5"``)."""
        return {
            "format": SENSITIVITY_FORMAT,
            "base": self.base,
            "ratios": list(self.ratios),
            "groups": {
                key: {
                    "size": self.sizes[key],
                    "modules": list(self.modules.get(key, [])),
                    "metrics": {repr(r): m for r, m in self.metrics[key].items()},
                    "drops": {repr(r): self.base - m for r, m in self.metrics[key].items()},
                    "removed": {repr(r): n for r, n in self.removed[key].items()},
                }
                for key in self.metrics
            },
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sensitivity:
        """Rebuild from :meth:`to_dict` output."""
        try:
            groups = data["groups"]
            return cls(
                base=float(data["base"]),
                ratios=[float(r) for r in data["ratios"]],
                sizes={k: int(g["size"]) for k, g in groups.items()},
                modules={k: list(g.get("modules", [])) for k, g in groups.items()},
                metrics={k: _float_keys(g["metrics"], float) for k, g in groups.items()},
                removed={k: _float_keys(g["removed"], int) for k, g in groups.items()},
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"malformed sensitivity dict ({type(exc).__name__}: {exc}); pass the output of "
                "Sensitivity.to_dict()"
            ) from exc

    def __str__(self) -> str:
        head = f"{'group':36}{'units':>6}" + "".join(f"{r:>8.2f}" for r in self.ratios)
        lines = [f"Sensitivity (base metric {self.base:.4f}; drop per ratio)", head]
        for key, curve in self.metrics.items():
            name = ",".join(self.modules.get(key, [])) or key
            cells = "".join(f"{self.base - curve[r]:>8.4f}" for r in self.ratios if r in curve)
            lines.append(f"{name[:35]:36}{self.sizes[key]:>6}{cells}")
        return "\n".join(lines)


def _float_keys(d: dict[str, Any], cast: Callable[[Any], Any]) -> dict[float, Any]:
    return {float(k): cast(v) for k, v in d.items()}


def _check_ratios(ratios: Iterable[float]) -> list[float]:
    out = sorted({float(r) for r in ratios if isinstance(r, (int, float))})
    bad = [r for r in ratios if isinstance(r, bool) or not isinstance(r, (int, float))]
    if bad or not out or not all(0.0 < r < 1.0 for r in out):
        raise ConfigError(
            f"ratios={list(ratios)!r} must be a non-empty list of fractions in (0, 1), "
            "e.g. (0.1, 0.2, ..., 0.9)"
        )
    return out


def _metric(eval_fn: Callable[[nn.Module], float], model: nn.Module, where: str) -> float:
    return finite_metric(eval_fn, model, where, name="eval_fn")


def _candidates(
    model: nn.Module, graph: DependencyGraph, ignore: Any, groups: Sequence[str] | None
) -> list[Group]:
    modules = dict(model.named_modules())
    ignored = ignored_names(model, ignore)
    keys = {g.key for g in graph.groups}
    unknown = [k for k in (groups or []) if k not in keys]
    if unknown:
        raise ConfigError(
            f"groups names {unknown[:5]}, which are not prunable groups of this model; valid "
            f"keys: {sorted(keys)[:12]} (print(prunekit.analyze(model, inputs)) lists them)"
        )
    return [
        g
        for g in graph.groups
        if not is_ignored(g, ignored, modules) and (groups is None or g.key in groups)
    ]


def analyze_sensitivity(
    model: nn.Module,
    example_inputs: Any,
    eval_fn: Callable[[nn.Module], float],
    *,
    ratios: Iterable[float] = DEFAULT_RATIOS,
    importance: str | Importance = "l2",
    ignore: Any = (),
    groups: Sequence[str] | None = None,
    trace_mode: str = "eval",
) -> Sensitivity:
    """Prune each group alone at each ratio (on a copy) and measure ``eval_fn``.

    Within a group, the units cut are those ``importance`` scores lowest, as
    :func:`prunekit.prune` would choose them: use the same criterion for both.

    Args:
        model: the trained model; it is not modified.
        example_inputs: as for :func:`prunekit.prune`.
        eval_fn: ``eval_fn(model) -> float``, higher is better (e.g. validation accuracy);
            it should set eval mode and ``torch.no_grad()`` itself.
        ratios: fractions of each group's units to try, in (0, 1).
        importance: criterion name or object (data-driven ones are prepared once).
        ignore: modules (or names) whose own output units are kept (not measured).
        groups: only these group keys (default: every prunable group).
        trace_mode: as for :func:`prunekit.analyze`.

    Returns:
        A :class:`Sensitivity`; ``.allocate(0.5).group_ratios`` feeds ``prunekit.prune``.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.evaluation import analyze_sensitivity
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
        ...                           torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> x = torch.randn(64, 4)
        >>> ref = net(x).detach()
        >>> def score(m):  # higher is better: minus the distance to the unpruned outputs
        ...     with torch.no_grad():
        ...         return -float((m(x) - ref).pow(2).mean())
        >>> sens = analyze_sensitivity(net, x[:1], score, ratios=[0.25, 0.5, 0.75])
        >>> sorted(sens.metrics), sens.removed["0.weight:0"]
        (['0.weight:0', '2.weight:0'], {0.25: 2, 0.5: 4, 0.75: 6})
        >>> alloc = sens.allocate(0.5)
        >>> sum(alloc.removed.values())
        8
        >>> res = prunekit.prune(net, x[:1], group_ratios=alloc.group_ratios)
        >>> res.model[0].out_features + res.model[2].out_features
        8
    """
    if not callable(eval_fn):
        raise ConfigError(f"eval_fn must be callable model -> float, got {eval_fn!r}")
    tried = _check_ratios(list(ratios))
    graph = analyze(model, example_inputs, trace_mode=trace_mode)
    candidates = _candidates(model, graph, ignore, groups)
    criterion = get_importance(importance)
    work = copy.deepcopy(model)  # criteria are prepared and the base is measured on a copy
    criterion.prepare(work, graph)
    base = _metric(eval_fn, work, "on the unpruned model")
    modules = dict(model.named_modules())
    out = Sensitivity(base, tried, {}, {}, {}, {}, {"importance": _name(importance)})
    sizes = {g.key: g.num_units for g in graph.groups}
    for g in candidates:
        scores = criterion(g, graph.tensors).detach().float().cpu()
        out.sizes[g.key] = g.num_units
        out.modules[g.key] = producer_modules(g, modules)
        out.metrics[g.key], out.removed[g.key] = {}, {}
        seen: dict[int, float] = {0: base}
        for r in tried:
            k = clamp_removal(g.num_units, int(r * g.num_units + 1e-9))
            if k not in seen:
                trial = copy.deepcopy(model)
                PruningPlan({g.key: lowest(scores, k)}, sizes).apply_to_graph(trial, graph)
                seen[k] = _metric(eval_fn, trial, f"with {k} units of group {g.key} cut")
            out.metrics[g.key][r], out.removed[g.key][r] = seen[k], k
    return out


def _name(importance: str | Importance) -> str:
    return importance if isinstance(importance, str) else type(importance).__name__
