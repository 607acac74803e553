"""Orchestration: analyse -> score -> allocate -> cut, atomically."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .allocation import SCOPES, select_units
from .errors import ConfigError, NothingToPruneError, PrunekitError
from .evaluation.cost import CostReport, measure_cost
from .graph.dependency import DependencyGraph, Group, analyze
from .graph.tracer import call_model, eval_mode, flatten_tensors
from .importance import Importance, get_importance
from .plan import PruningPlan
from .surgery import get_handler

__all__ = ["prune", "PruneResult", "PruneSummary"]


@dataclass
class PruneSummary:
    """Params and MACs before/after and each group's width before/after."""

    before: CostReport
    after: CostReport
    widths: list[tuple[str, int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "widths": [list(w) for w in self.widths],
        }

    def __str__(self) -> str:
        def ratio(a: int, b: int) -> str:
            return f"{b / a:.3f}x" if a else "-"

        b, a = self.before, self.after
        lines = [
            f"{'':10}{'before':>14}{'after':>14}{'ratio':>9}",
            f"{'params':10}{b.params:>14,}{a.params:>14,}{ratio(b.params, a.params):>9}",
            f"{'MACs':10}{b.macs:>14,}{a.macs:>14,}{ratio(b.macs, a.macs):>9}",
            "group widths:",
        ]
        lines.extend(f"  {key:48} {w0:>6} -> {w1:<6}" for key, w0, w1 in self.widths)
        return "\n".join(lines)


@dataclass
class PruneResult:
    """What :func:`prune` returns: the pruned model, the plan, and the cost summary.

    Costs are measured lazily (MAC counting runs the model), so ``prune`` itself only pays
    for analysis and surgery. With ``inplace=True`` the "before" cost is measured eagerly.
    """

    model: nn.Module
    plan: PruningPlan
    graph: DependencyGraph
    example_inputs: Any = field(repr=False, default=None)
    reference: nn.Module | None = field(repr=False, default=None)
    _before: CostReport | None = field(repr=False, default=None)
    _after: CostReport | None = field(repr=False, default=None)

    @property
    def before(self) -> CostReport:
        """Params and MACs of the unpruned model."""
        if self._before is None:
            assert self.reference is not None
            self._before = measure_cost(self.reference, self.example_inputs)
        return self._before

    @property
    def after(self) -> CostReport:
        """Params and MACs of the pruned model."""
        if self._after is None:
            self._after = measure_cost(self.model, self.example_inputs)
        return self._after

    def summary(self) -> PruneSummary:
        widths = [
            (g.key, g.num_units, g.num_units - len(self.plan.removed.get(g.key, [])))
            for g in self.graph.groups
        ]
        return PruneSummary(self.before, self.after, widths)


def _validate(ratio: float, scope: str, round_to: int) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ConfigError(f"ratio={ratio!r} is not a number; pass a float in [0, 1), e.g. 0.5")
    if not 0.0 <= float(ratio) < 1.0:
        raise ConfigError(f"ratio={ratio!r} is outside [0, 1); pass the fraction of units to cut")
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r} is unknown; use one of {SCOPES}")
    if not isinstance(round_to, int) or round_to < 1:
        raise ConfigError(f"round_to={round_to!r} must be a positive int (e.g. 8)")


def _ignored_names(model: nn.Module, ignore: Any) -> set[str]:
    names = {id(m): n for n, m in model.named_modules()}
    valid = set(names.values())
    out: set[str] = set()
    for item in ignore:
        if isinstance(item, nn.Module):
            if id(item) not in names:
                raise ConfigError(
                    f"ignore contains a {type(item).__name__} that is not a submodule of the "
                    "model; pass modules of this model or their qualified names"
                )
            out.add(names[id(item)])
        elif isinstance(item, str):
            if item not in valid:
                close = [n for n in valid if item.split(".")[-1] in n][:5]
                raise ConfigError(
                    f"ignore names module {item!r}, which is not in the model"
                    + (f"; did you mean one of {close}?" if close else "")
                )
            out.add(item)
        else:
            raise ConfigError(f"ignore items must be modules or names, got {type(item).__name__}")
    return out


def _ignored_group(group: Group, ignored: set[str], modules: dict[str, nn.Module]) -> bool:
    if "" in ignored:  # the root module itself: nothing may be cut
        return True
    for m in group.members:
        mod = m.module
        if mod in ignored or any(mod.startswith(i + ".") for i in ignored if i):
            own = get_handler(modules[mod]).output_dims(modules[mod])
            if own.get(m.tensor) == m.dim:
                return True
    return False


def prune(
    model: nn.Module,
    example_inputs: Any,
    *,
    ratio: float,
    importance: str | Importance = "l2",
    scope: str = "local",
    ignore: Any = (),
    round_to: int = 1,
    inplace: bool = False,
) -> PruneResult:
    """Structurally prune ``model``: remove the lowest-scoring ``ratio`` of units.

    Args:
        model: the model to prune; untouched unless ``inplace=True``.
        example_inputs: a tensor, a tuple of positional inputs, or a dict of keyword inputs.
        ratio: fraction of units to remove, in [0, 1).
        importance: a criterion name (``"l1"``, ``"l2"``, ``"random"`` ...) or object.
        scope: ``"local"`` (same fraction per group) or ``"global"`` (ranked across groups).
        ignore: modules (or qualified names) whose own output units must be kept.
        round_to: kept widths are rounded up to a multiple of this.
        inplace: modify ``model`` itself; on failure it is left as it was.

    Returns:
        A :class:`PruneResult` with ``.model``, ``.plan`` and ``.summary()``.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
        ...                           torch.nn.Conv2d(8, 4, 3))
        >>> res = prunekit.prune(net, torch.randn(1, 3, 8, 8), ratio=0.5)
        >>> res.model[0].out_channels
        4
    """
    _validate(ratio, scope, round_to)
    criterion = get_importance(importance)
    ignored = _ignored_names(model, ignore)
    work = copy.deepcopy(model)
    before = measure_cost(work, example_inputs) if inplace else None
    graph = analyze(work, example_inputs)
    modules = dict(work.named_modules())
    candidates = [g for g in graph.groups if not _ignored_group(g, ignored, modules)]
    if not candidates:
        raise NothingToPruneError(
            f"{type(model).__name__} has no prunable group ({len(graph.groups)} groups, all "
            "ignored or frozen); print(prunekit.analyze(model, example_inputs)) shows why"
        )
    scores = {g.id: criterion(g, graph.tensors).detach().float().cpu() for g in candidates}
    chosen = select_units(candidates, scores, ratio=float(ratio), scope=scope, round_to=round_to)
    plan = PruningPlan(
        {g.key: chosen[g.id] for g in candidates if chosen[g.id]},
        {g.key: g.num_units for g in graph.groups},
        {"ratio": float(ratio), "scope": scope, "round_to": round_to,
         "importance": importance if isinstance(importance, str) else type(importance).__name__},
    )  # fmt: skip
    plan.apply_to_graph(work, graph)
    _check_runs(work, example_inputs, graph.example_output)
    if inplace:
        model.__dict__.clear()
        model.__dict__.update(work.__dict__)
        model.__class__ = work.__class__
        work = model
    return PruneResult(work, plan, graph, example_inputs, None if inplace else model, before)


def _check_runs(model: nn.Module, example_inputs: Any, reference: Any) -> None:
    """The pruned model must run and give outputs of the original shapes."""
    try:
        with torch.no_grad(), eval_mode(model):
            out = call_model(model, example_inputs)
    except Exception as exc:
        raise PrunekitError(
            f"the pruned model failed to run ({type(exc).__name__}: {exc}); the original model "
            "is unchanged. A module probably keeps a size in an attribute the engine does not "
            "know: register a handler for it (prunekit.surgery.register_handler)"
        ) from exc
    got = [tuple(t.shape) for t in flatten_tensors(out)]
    want = [tuple(t.shape) for t in flatten_tensors(reference)]
    if got != want:
        raise PrunekitError(
            f"pruning changed the model's output shapes from {want} to {got}; the original "
            "model is unchanged. Please report this with the model definition"
        )
