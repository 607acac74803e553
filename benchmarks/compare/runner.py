"""Run one task: train/load the baseline per seed, cut with every method, recover, measure.

Each result row is a flat JSON-ready dict: the budget (target and realised), quality right
after the cut (raw and after BatchNorm recalibration), after recovery, and cost (MACs,
params, CPU latency at batch 1 and 64 on the first seed, the pruning step's own time).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.evaluation import count_macs, count_params, measure_latency, measure_speedup
from prunekit.recovery import (
    Distillation,
    NoiseInjection,
    batchnorm_layers,
    compensate,
    finetune,
    recalibrate_bn,
)

from .checkpoint import Checkpoint
from .config import BenchConfig, TaskSpec
from .methods import (
    Cut,
    CutContext,
    base_method,
    make_permanent,
    recovery_variants,
    run_method,
    tool_of,
)
from .training import TaskData, classifier_of, evaluate_quality, load_task, trained_baseline

__all__ = ["hidden_width", "latency_ms", "reseed_loader", "run_task"]


def hidden_width(model: nn.Module) -> int:
    """Total output units of every Linear but the classifier (the MLP task's neurons)."""
    clf = classifier_of(model)
    return sum(m.out_features for m in model.modules() if isinstance(m, nn.Linear) and m is not clf)


def latency_ms(model: nn.Module, example: torch.Tensor, cfg: BenchConfig,
               base: nn.Module | None = None) -> dict[str, float]:  # fmt: skip
    """Median CPU latency (ms), ``cfg.latency_threads`` threads: batch 1 and 64 of the
    inference form (BatchNorm folded, channels-last images: what a deployment runs, the same
    transform for every model), and batch 64 of the eager training form.

    With ``base``, each setting times ``base`` and ``model`` in interleaved rounds
    (:func:`~prunekit.evaluation.measure_speedup`) and also returns the unpruned model's
    medians of the same window as ``base_*``: the speed-up never compares two machine loads.
    """
    out: dict[str, float] = {}
    for key, bs, deploy in (("lat_b1_ms", 1, True), ("lat_b64_ms", 64, True),
                            ("eager_lat_b64_ms", 64, False)):  # fmt: skip
        kw: dict[str, Any] = {"batch_size": bs, "warmup": 5, "runs": cfg.latency_runs,
                              "threads": cfg.latency_threads, "deploy": deploy}  # fmt: skip
        if base is None:
            out[key] = measure_latency(model, example, **kw).median_ms
            continue
        pair = measure_speedup(
            base, model, example, rounds=min(cfg.latency_rounds, cfg.latency_runs), **kw
        )
        out[key], out[f"base_{key}"] = pair.candidate.median_ms, pair.reference.median_ms
    return out


def reseed_loader(loader: Any, seed: int) -> None:
    """Restart the shuffle of ``loader`` (its own generator) from ``seed``: recalibration
    and recovery of each method then see the same batches, independent of method order."""
    gen = getattr(loader, "generator", None)
    if isinstance(gen, torch.Generator):
        gen.manual_seed(seed)


def _recalibrate(model: nn.Module, data: TaskData, cfg: BenchConfig) -> bool:
    if not batchnorm_layers(model):
        return False
    recalibrate_bn(model, data.train, samples=cfg.recovery.bn_samples)
    return True


def _recover(model: nn.Module, teacher: nn.Module | None, data: TaskData, cfg: BenchConfig,
             seed: int, noise: bool = False) -> None:  # fmt: skip
    r = cfg.recovery
    distill = Distillation(teacher, temperature=4.0, alpha=0.7) if teacher is not None else None
    injection = NoiseInjection(scale=0.01, decay="linear") if noise else None
    finetune(model, data.train, optimizer=r.optimizer, lr=r.lr, momentum=r.momentum,
             weight_decay=r.weight_decay, epochs=r.epochs, lr_schedule=r.lr_schedule,
             val_data=data.val, progress=False, seed=seed, distill=distill,
             noise=injection)  # fmt: skip


def _recovery_label(method: str) -> str:
    """``finetune`` plus the method's recovery suffixes (``finetune+comp``)."""
    return "finetune" + method[len(base_method(method)) :]


def _compensate(model: nn.Module, base: nn.Module, ctx: CutContext, data: TaskData,
                nc: int) -> dict[str, Any]:  # fmt: skip
    """Least-squares compensation on the calibration batches; its time and accuracy."""
    t0 = time.perf_counter()
    report = compensate(model, base, ctx.calib, batches=len(ctx.calib))
    out: dict[str, Any] = {"comp_s": time.perf_counter() - t0, "comp_layers": len(report.updated)}
    out.update({f"comp_{k}": v for k, v in evaluate_quality(model, data.test, nc).items()})
    return out


def _row_for(method: str, cut: Cut, base: nn.Module, data: TaskData, task: TaskSpec,
             cfg: BenchConfig, ctx: CutContext, level: float) -> dict[str, Any]:  # fmt: skip
    nc = data.splits.num_classes
    model = cut.model
    reseed_loader(data.train, ctx.seed)  # same shuffle for every method, whatever ran before
    macs = count_macs(model, data.example)
    row: dict[str, Any] = {
        "method": method, "tool": tool_of(method), "level": level,
        "recovery": _recovery_label(method),
        "target_macs": ctx.base_macs / level if task.kind == "macs" else None,
        "macs": macs, "macs_reduction": ctx.base_macs / max(macs, 1),
        "params": count_params(model), "prune_s": cut.prune_s, "search_s": cut.search_s,
        "ratio": cut.ratio, "sparsity": cut.sparsity, "notes": list(cut.notes),
    }  # fmt: skip
    if task.kind == "neurons":
        row["neurons_removed"] = 1.0 - hidden_width(model) / hidden_width(base)
    variants = recovery_variants(method)
    row.update({f"raw_{k}": v for k, v in evaluate_quality(model, data.test, nc).items()})
    if "+comp" in variants:
        row.update(_compensate(model, base, ctx, data, nc))
    row["bn_recalibrated"] = _recalibrate(model, data, cfg)
    row.update({f"bn_{k}": v for k, v in evaluate_quality(model, data.test, nc).items()})
    teacher = base if "+kd" in variants else None
    _recover(model, teacher, data, cfg, ctx.seed, noise="+noise" in variants)
    make_permanent(model)
    row.update({f"ft_{k}": v for k, v in evaluate_quality(model, data.test, nc).items()})
    return row


def _failed_row(method: str, level: float, exc: Exception) -> dict[str, Any]:
    """The row of a method that could not make the cut: no metrics, the reason in its notes."""
    return {"method": method, "tool": tool_of(method), "level": level,
            "recovery": _recovery_label(method),
            "notes": [f"no cut at this budget: {exc}"]}  # fmt: skip


def _cut_once(method: str, methods: tuple[str, ...], cuts: dict[str, Cut], base: nn.Module,
              ctx: CutContext, level: float) -> Cut:  # fmt: skip
    """The cut of ``method``; a cut shared with its ``+kd`` twin is made once and copied."""
    key = base_method(method)
    if key in cuts:
        return cuts.pop(key)
    cut = run_method(method, base, ctx, level)
    if sum(base_method(m) == key for m in methods) > 1:
        cuts[key] = copy.copy(cut)
        cuts[key].model = copy.deepcopy(cut.model)
    return cut


def _seed_rows(task: TaskSpec, cfg: BenchConfig, seed: int, log: Any) -> list[dict[str, Any]]:
    data = load_task(task, seed=seed)
    t0 = time.perf_counter()
    base, cached = trained_baseline(task, data, seed=seed)
    log(
        f"[{task.name} s{seed}] baseline {'cached' if cached else 'trained'} "
        f"({time.perf_counter() - t0:.0f}s)"
    )
    base_macs = count_macs(base, data.example)
    ctx = CutContext(
        data.example, data.calib_batches(cfg.calib_batches), task.kind, base_macs, seed
    )
    timed = seed == (task.seeds or cfg.seeds)[0]
    base_q = evaluate_quality(base, data.test, data.splits.num_classes)
    log(f"[{task.name} s{seed}] unpruned test accuracy {base_q['acc']:.2f}")
    base_lat = latency_ms(base, data.example, cfg) if timed else {}
    unpruned = {"method": "unpruned", "tool": "reference", "level": None, "macs": base_macs,
                "macs_reduction": 1.0, "params": count_params(base), "ft_acc": base_q["acc"],
                "ft_f1": base_q["f1"], "baseline_cached": cached, **base_lat}  # fmt: skip
    rows = [unpruned]
    for level in task.levels:
        cuts: dict[str, Cut] = {}
        for method in task.methods:
            t1 = time.perf_counter()
            try:
                cut = _cut_once(method, task.methods, cuts, base, ctx, level)
            except ConfigError as exc:  # e.g. a budget this method's rounding cannot reach
                rows.append(_failed_row(method, level, exc))
                log(f"[{task.name} s{seed} x{level}] {method:24s} failed: {exc}")
                continue
            row = _row_for(method, cut, base, data, task, cfg, ctx, level)
            if timed:
                row.update(latency_ms(cut.model, data.example, cfg, base=base))
            rows.append(row)
            log(f"[{task.name} s{seed} x{level}] {method:24s} macs/{row['macs_reduction']:.2f} "
                f"raw {row['raw_acc']:.1f} bn {row['bn_acc']:.1f} ft {row['ft_acc']:.1f} "
                f"({time.perf_counter() - t1:.0f}s)")  # fmt: skip
    for row in rows:
        row.update({"task": task.name, "dataset": task.dataset, "model": task.model,
                    "kind": task.kind, "seed": seed, "base_macs": base_macs,
                    "base_acc": base_q["acc"], "base_f1": base_q["f1"]})  # fmt: skip
    return rows


def run_task(task: TaskSpec, cfg: BenchConfig, *, log: Any = print,
             checkpoint: Checkpoint | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Every method at every level of ``task``, for every seed of ``cfg``; each finished seed
    is saved to ``checkpoint``, and a seed it already holds is taken from it, not rerun."""
    rows: list[dict[str, Any]] = []
    for seed in task.seeds or cfg.seeds:
        saved = checkpoint.rows(task.name, seed) if checkpoint else None
        if saved is not None and checkpoint is not None:
            log(f"[{task.name} s{seed}] resumed: {len(saved)} rows from {checkpoint.path}")
            rows += saved
            continue
        t0 = time.perf_counter()
        new = _seed_rows(task, cfg, seed, log)
        if checkpoint is not None:
            checkpoint.save(task.name, seed, new, elapsed_s=time.perf_counter() - t0)
        rows += new
    return rows
