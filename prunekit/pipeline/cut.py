"""The cut of a run: the criterion a recipe names, a one-shot or iterative prune, or a search.

Every cut model has its BatchNorm statistics re-estimated right after each cut (see
:func:`reestimate`), so no cut model is ever scored with stale statistics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import RecipeError
from ..evaluation import count_macs, count_params
from ..importance import DataCriterion, Fuse, Importance, get_importance
from ..plan import PruningPlan
from ..pruner import Pruner
from ..recipe import DataBundle, PruneSpec, Recipe, SearchSpec
from ..recipe.schema import FinetuneSpec
from ..recovery import batchnorm_layers, compensate, finetune, recalibrate_bn, task_loss
from ..schedule import Iterative
from ..search import Budget, Strategy, search
from .measure import accuracy_on

__all__ = ["CutOutcome", "build_importance", "reestimate", "cut_prune", "cut_search"]


@dataclass
class CutOutcome:
    """What the cut produced: the model, its plan, scores and (search) trade-off points."""

    model: nn.Module
    plan: PruningPlan
    scores: dict[str, list[float]] = field(default_factory=dict)
    tradeoff: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    search: dict[str, Any] | None = None
    calibrated_samples: int = 0


def _one_criterion(name: str, data: DataBundle, batches: int, split: str) -> Importance:
    crit = get_importance(name)
    if isinstance(crit, DataCriterion):
        loader = data.train if split == "train" else data.val
        crit = dataclasses.replace(crit, data=loader, loss_fn=task_loss, batches=batches)
    return crit


def calibration_note(spec: PruneSpec) -> str | None:
    """Which split the recipe's data-driven criteria calibrate on (``None``: none is)."""
    names = spec.importance if isinstance(spec.importance, list) else [spec.importance]
    driven = [n for n in names if isinstance(get_importance(n), DataCriterion)]
    if not driven:
        return None
    held = " (held out from training)" if spec.calibration_split == "val" else ""
    return (f"criterion {', '.join(driven)} calibrated on {spec.calibration_batches} batches "
            f"of the {spec.calibration_split} split{held}")  # fmt: skip


def build_importance(spec: PruneSpec | str, data: DataBundle, batches: int = 8) -> Importance:
    """The criterion object for a recipe's ``importance`` (data-driven ones get the
    validation loader, held out from training, unless ``calibration_split: train``, and
    cross-entropy; a list is fused by rank average).

    Example:
        >>> from prunekit.recipe import parse_recipe, resolve_data
        >>> r = parse_recipe("model: {name: mlp}\\ndata: {name: iris}\\nprune: {ratio: 0.5, "
        ...                  "importance: [taylor, l2]}\\n")
        >>> type(build_importance(r.prune, resolve_data(r))).__name__
        'Fuse'
    """
    names = spec if isinstance(spec, str) else spec.importance
    batches = batches if isinstance(spec, str) else spec.calibration_batches
    split = "val" if isinstance(spec, str) else spec.calibration_split
    if isinstance(names, list):
        if len(names) == 1:
            return _one_criterion(names[0], data, batches, split)
        return Fuse([_one_criterion(n, data, batches, split) for n in names], method="rank")
    return _one_criterion(names, data, batches, split)


def reestimate(model: nn.Module, data: DataBundle) -> int:
    """Re-estimate BatchNorm running statistics on training batches; samples used (0: no BN)."""
    if not batchnorm_layers(model):
        return 0
    return recalibrate_bn(model, data.train, samples=1024)


def cut_prune(
    model: nn.Module, recipe: Recipe, data: DataBundle, example: torch.Tensor
) -> CutOutcome:
    """Prune a copy of ``model`` as ``recipe.prune`` says, calibrating BN after every step.

    The section builds the library's :class:`~prunekit.spec.CutSpec`; ``schedule:
    iterative`` ramps it (a ratio or a budget alike) over ``steps`` linear steps.
    """
    spec = recipe.prune
    if spec is None:
        raise RecipeError(
            f"{recipe.source}: the recipe has no prune section; add prune: {{target_macs: 0.5}}"
        )
    pruner = Pruner(
        model, example, importance=build_importance(spec, data), ignore=list(spec.ignore),
        spec=spec.cut_spec(),
        bn_data=False,  # recalibrated below with :func:`reestimate`, after every step
    )  # fmt: skip
    schedule = None
    if spec.schedule == "iterative":
        schedule = Iterative(steps=spec.steps, ramp="linear",
                             callback=lambda m, t: reestimate(m, data))  # fmt: skip
    result = pruner.run(schedule)
    work = result.model
    samples = reestimate(work, data)
    plan = result.plan.steps[0] if len(result.plan.steps) == 1 else result.plan
    scores = {k: v.flatten().tolist() for k, v in pruner.scores_.items()}
    note = calibration_note(spec)
    return CutOutcome(work, plan, scores, notes=[note] if note else [], calibrated_samples=samples)


def _strategies(spec: SearchSpec, data: DataBundle) -> list[Strategy]:
    return [
        Strategy(
            name=s.name or f"{s.importance}-{s.scope}",
            importance=build_importance(s.importance, data),
            scope=s.scope,
        )  # fmt: skip
        for s in spec.strategies
    ]


@dataclass
class _CandidateSteps:
    """What a search does to every candidate: finish the cut, then a quick recovery.

    Right after the cut, before any training, is where least-squares compensation belongs (it
    reads the kept units from the weights), so with ``recovery.compensate`` every candidate is
    compensated there and the search ranks each strategy by what the run's recovery will make
    of it; :func:`~prunekit.pipeline.recover` then does not refit the winner again.
    """

    original: nn.Module
    data: DataBundle
    recover_epochs: int
    compensating: bool
    settings: FinetuneSpec = field(default_factory=lambda: FinetuneSpec.model_construct())

    def finish_cut(self, m: nn.Module) -> None:
        if self.compensating:
            compensate(m, self.original, self.data.train, batches=8)
        reestimate(m, self.data)

    def recover(self, m: nn.Module) -> None:
        """The quick recovery of ``recover_epochs``, with the recipe's fine-tuning optimizer,
        lr and lr schedule (``recovery.finetune``, else the library's defaults)."""
        ft = self.settings
        finetune(m, self.data.train, optimizer=ft.optimizer, lr=ft.lr, lr_schedule=ft.lr_schedule,
                 epochs=self.recover_epochs, progress=False)  # fmt: skip
        reestimate(m, self.data)

    def after_curve_cut(self, m: nn.Module) -> None:
        """For :func:`_curve`, which has recalibrated BatchNorm already."""
        if self.compensating:
            self.finish_cut(m)
        if self.recover_epochs:
            self.recover(m)


def cut_search(
    model: nn.Module,
    recipe: Recipe,
    data: DataBundle,
    example: torch.Tensor,
    *,
    progress: bool,
    checkpoint: Path | None = None,
) -> CutOutcome:
    """Search the cut as ``recipe.search`` says (metric: validation accuracy); with
    ``checkpoint`` (a directory) every measured point is recorded there and a rerun with the
    same recipe reuses them (an interrupted search resumes)."""
    spec = recipe.search
    if spec is None:
        raise RecipeError(
            f"{recipe.source}: the recipe has no search section; add search: {{tolerance: 0.01}}"
        )
    budget = None
    if spec.budget is not None:
        budget = Budget(macs=spec.budget.macs, params=spec.budget.params)

    steps = _CandidateSteps(model, data, spec.recover_epochs, recipe.recovery.compensate,
                            recipe.recovery.finetune or FinetuneSpec.model_validate({}))  # fmt: skip
    recover, finish_cut, compensating = steps.recover, steps.finish_cut, steps.compensating
    has_bn = bool(batchnorm_layers(model))
    strategies = _strategies(spec, data)
    result = search(
        model, example, metric=lambda m: accuracy_on(m, data.val), tolerance=spec.tolerance,
        budget=budget, strategies=strategies,
        recover=recover if spec.recover_epochs else None,
        after_cut=finish_cut if has_bn or compensating else None,
        steps=spec.steps, max_ratio=spec.max_ratio, progress=progress, seed=recipe.data.seed,
        checkpoint=checkpoint,
    )  # fmt: skip
    points = [
        {
            "strategy": p.strategy,
            "macs": p.macs,
            "params": p.params,
            "metric": p.metric,
            "chosen": p == result.best,
            "kind": "search",
        }  # fmt: skip
        for p in result.points
        if p.metric is not None
    ]
    base = result.baseline
    points.append({"strategy": "unpruned", "macs": base.macs, "params": base.params,
                   "metric": base.metric, "chosen": False, "kind": "baseline"})  # fmt: skip
    points += _curve(model, example, strategies, spec.curve, data,
                     steps.after_curve_cut if spec.recover_epochs or compensating else None,
                     seed=recipe.data.seed)  # fmt: skip
    samples = reestimate(result.model, data)
    winner = next((s for s in strategies if s.name == result.best.strategy), strategies[0])
    return CutOutcome(
        result.model, result.plan, _scores(model, example, winner), tradeoff=points,
        notes=list(result.notes), search=result.to_dict(), calibrated_samples=samples,
    )  # fmt: skip


def _curve(
    model: nn.Module,
    example: torch.Tensor,
    strategies: list[Strategy],
    ratios: list[float],
    data: DataBundle,
    recover: Callable[[nn.Module], None] | None,
    *,
    seed: int,
) -> list[dict[str, Any]]:
    """Each strategy at each of ``ratios``, calibrated and recovered like a search candidate
    and scored on validation data: the trade-off curve of the report."""
    points = []
    for strategy in strategies:
        for ratio in ratios:
            torch.manual_seed(seed)
            cut = Pruner(model, example, importance=strategy.importance, ratio=ratio,
                         scope=strategy.scope, bn_data=False).step().model  # fmt: skip
            reestimate(cut, data)
            if recover is not None:
                recover(cut)
            points.append({
                "strategy": strategy.name, "macs": count_macs(cut, example),
                "params": count_params(cut), "metric": accuracy_on(cut, data.val),
                "chosen": False, "kind": "curve", "ratio": ratio,
            })  # fmt: skip
    return points


def _scores(model: nn.Module, example: torch.Tensor, strategy: Strategy) -> dict[str, list[float]]:
    """The winning strategy's unit scores on the unpruned model (for the report's plot)."""
    scorer = Pruner(model, example, importance=strategy.importance, ratio=0.0, verify="shapes",
                    bn_data=False)  # fmt: skip
    scorer.step()
    return {k: v.flatten().tolist() for k, v in scorer.scores_.items()}
