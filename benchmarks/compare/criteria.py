"""Criterion quality without recovery: accuracy right after a one-shot local cut.

For every criterion (prunekit's registry names, Taylor, loss contribution, a fusion, and
Torch-Pruning's importances as a cross-check) and every ratio, the trained baseline is cut
once with the same ratio in every layer (``scope="local"``, classifier kept) and evaluated
raw and after BatchNorm recalibration. No fine-tuning: this ranks the scores themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import prunekit
from prunekit.evaluation import count_macs
from prunekit.importance import Fuse, LossContribution, Taylor

from .config import BenchConfig, TaskSpec
from .methods import MAX_RATIO, CutContext, _tp_cut
from .training import ce_loss, classifier_of, evaluate_quality, load_task, trained_baseline

__all__ = ["criterion_factories", "sweep_criteria"]


def criterion_factories(calib: list[Any]) -> dict[str, Any]:
    """``{label: spec}``: a prunekit importance factory, or a Torch-Pruning criterion name."""
    pk: dict[str, Callable[[], Any]] = {
        name: functools.partial(str, name)
        for name in ("l1", "l2", "fpgm", "lamp", "bn_scale", "random")
    }
    pk["taylor"] = lambda: Taylor(data=calib, loss_fn=ce_loss)
    pk["taylor-elementwise"] = lambda: Taylor(data=calib, loss_fn=ce_loss, variant="elementwise")
    pk["loss-contribution"] = lambda: LossContribution(data=calib[:2], loss_fn=ce_loss)
    pk["fuse(taylor,l2)"] = lambda: Fuse([Taylor(data=calib, loss_fn=ce_loss), "l2"],
                                         weights=[0.7, 0.3])  # fmt: skip
    out: dict[str, Any] = {f"pk:{label}": make for label, make in pk.items()}
    out.update({f"tp:{crit}": crit for crit in ("l2", "taylor", "lamp", "bn")})
    return out


def sweep_criteria(task: TaskSpec, cfg: BenchConfig, *, log: Any = print) -> list[dict[str, Any]]:
    """One-shot cuts of ``task``'s baselines at ``cfg.criteria_ratios`` for every criterion."""
    rows: list[dict[str, Any]] = []
    for seed in cfg.seeds[: cfg.criteria_seeds]:
        data = load_task(task, seed=seed)
        base, _ = trained_baseline(task, data, seed=seed)
        calib = data.calib_batches(cfg.calib_batches)
        ctx = CutContext(data.example, calib, task.kind, count_macs(base, data.example), seed)
        nc = data.splits.num_classes
        for label, spec in criterion_factories(calib).items():
            for ratio in cfg.criteria_ratios:
                torch.manual_seed(seed)
                model = _make(label, spec, base, ctx, ratio)
                row = {"task": task.name, "seed": seed, "criterion": label, "ratio": ratio,
                       "macs_reduction": ctx.base_macs / count_macs(model, data.example)}  # fmt: skip
                row.update(
                    {f"raw_{k}": v for k, v in evaluate_quality(model, data.test, nc).items()}
                )
                prunekit.recovery.recalibrate_bn(model, data.train, samples=cfg.recovery.bn_samples)
                row.update(
                    {f"bn_{k}": v for k, v in evaluate_quality(model, data.test, nc).items()}
                )
                rows.append(row)
            log(f"[criteria {task.name} s{seed}] {label}: "
                + " ".join(f"{r['bn_acc']:.1f}" for r in rows[-len(cfg.criteria_ratios):]))  # fmt: skip
    return rows


def _make(label: str, spec: Any, base: nn.Module, ctx: CutContext, ratio: float) -> nn.Module:
    if label.startswith("tp:"):
        return _tp_cut(base, ctx, spec, False, ratio)
    return prunekit.prune(base, ctx.example, ratio=ratio, importance=spec(),
                          ignore=(classifier_of(base),), max_ratio=MAX_RATIO).model  # fmt: skip
