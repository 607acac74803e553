"""The criterion benchmark: one-shot accuracy with no training, every criterion.

``python -m benchmarks.criteria [--quick] [--tasks digits-mlp cnn1d ...]``

For each trained model (none trained on its held-out calibration split), each criterion and
each calibration split (``held-out``: the validation split; ``train``: the model's own
training batches) the hidden units are cut at 30/50/70% in every group
(``scope="local"``, classifier kept) and the test accuracy is measured with no training and
no compensation (a model with BatchNorm gets its running statistics re-estimated on 256
training samples: no gradient step, and without it every cut CNN is at chance). Random is the mean ±
std over seeds; ``cost`` is the criterion's scoring time (prepare + every group) relative to
one Taylor pass on the same calibration data; Torch-Pruning's criteria run on the same cuts.

Rows go to ``docs/bench/criteria.jsonl`` (one JSON object per line) and the tables to the
section of ``docs/BENCHMARKS.md`` between ``<!-- criteria:begin -->`` and
``<!-- criteria:end -->``. Timings come from a shared 2-core machine: compare them only
within one run.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import prunekit
from prunekit.data import cache_dir, load_dataset
from prunekit.errors import CalibrationWarning
from prunekit.importance import (
    OBS,
    ActivationMean,
    APoZ,
    Criterion,
    Fisher,
    LossContribution,
    MeanGradient,
    RandomImportance,
    Reconstruction,
    Taylor,
    Wanda,
)

__all__ = ["TASKS", "Task", "criteria", "main", "render", "run_task"]

RATIOS = (0.3, 0.5, 0.7)
BEGIN, END = "<!-- criteria:begin -->", "<!-- criteria:end -->"
Batch = tuple[torch.Tensor, torch.Tensor]


def ce(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    return F.cross_entropy(out, batch[1])


@dataclass
class Task:
    """A trained model with its calibration splits and test data."""

    name: str
    model: nn.Module
    held: list[Batch]
    train: list[Batch]
    test: list[Batch]
    example: torch.Tensor
    bn: list[Batch] | None = None  # BatchNorm re-estimation batches (training data), if any

    def classifier(self) -> nn.Module:
        return [m for m in self.model.modules() if isinstance(m, nn.Linear)][-1]


def _tensors(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack(xs), torch.tensor(ys)


def _batches(x: torch.Tensor, y: torch.Tensor, n: int, size: int) -> list[Batch]:
    return [(x[i : i + size], y[i : i + size]) for i in range(0, min(n, len(x)), size)]


def digits_mlp(seed: int) -> Task:
    """The issue's MLP: 64-96-96-10 on sklearn digits, trained to 100% train accuracy;
    250 held-out (validation) samples calibrate it."""
    s = load_dataset("digits", seed=0, val_fraction=0.15, test_fraction=0.25)
    (tx, ty), (vx, vy), (ex, ey) = (_tensors(d) for d in (s.train, s.val, s.test))
    tx, vx, ex = tx.flatten(1), vx.flatten(1), ex.flatten(1)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 96), nn.ReLU(),
                        nn.Linear(96, 10))  # fmt: skip
    path = cache_dir() / "bench-criteria" / f"digits-mlp-s{seed}.pt"
    if path.exists():
        net.load_state_dict(torch.load(path))
    else:
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(60):
            perm = torch.randperm(len(tx), generator=gen)
            for i in range(0, len(tx), 64):
                idx = perm[i : i + 64]
                loss = F.cross_entropy(net(tx[idx]), ty[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
    return Task(f"digits-mlp-s{seed}", net.eval(), _batches(vx, vy, 250, 50),
                _batches(tx, ty, 250, 50), [(ex, ey)], ex[:2])  # fmt: skip


def _compare_task(name: str, dataset: str, model: str, epochs: int, seed: int) -> Task:
    """A model of the side-by-side benchmark (benchmarks/compare, cached baselines)."""
    from benchmarks.compare.config import TaskSpec
    from benchmarks.compare.training import load_task, trained_baseline

    spec = TaskSpec(name, dataset, model, "macs", (2.0,), train_epochs=epochs)
    data = load_task(spec, seed=seed)
    net, _ = trained_baseline(spec, data, seed=seed)
    vx, vy = next(iter(data.val))
    train = [b for b, _ in zip(data.train, range(4))]
    test = list(data.test)
    cut = [(x[:64], y[:64]) for x, y in train]
    return Task(f"{model}-{dataset}-s{seed}", net.eval(), _batches(vx, vy, 256, 64), cut, test,
                data.example, bn=cut)  # fmt: skip


TASKS: dict[str, Callable[[int], Task]] = {
    "digits-mlp": digits_mlp,
    "cnn1d-mnist1d": lambda s: _compare_task("t4-cnn1d-mnist1d", "mnist1d", "cnn1d", 15, s),
    "resnet20-animal_mnist": lambda s: _compare_task(
        "t1-resnet20-animal_mnist", "animal_mnist", "resnet20", 6, s
    ),
}


def criteria(cal: list[Batch]) -> dict[str, Callable[[], Any]]:
    """Every prunekit criterion, by label (data-driven ones on ``cal``)."""
    out: dict[str, Callable[[], Any]] = {n: (lambda n=n: n) for n in ("l1", "l2", "fpgm", "lamp")}
    out.update({
        "grad": lambda: MeanGradient(data=cal, loss_fn=ce),
        "taylor": lambda: Taylor(data=cal, loss_fn=ce),
        "taylor_sq": lambda: Taylor(data=cal, loss_fn=ce, variant="sq"),
        "fisher": lambda: Fisher(data=cal, loss_fn=ce),
        "activation": lambda: ActivationMean(data=cal),
        "apoz": lambda: APoZ(data=cal),
        "wanda": lambda: Wanda(data=cal),
        "loss (one-shot, chunks=1)": lambda: LossContribution(data=cal, loss_fn=ce, chunks=1),
        "loss (default chunks=32)": lambda: LossContribution(data=cal, loss_fn=ce),
        "obs (chunks=1)": lambda: OBS(data=cal, chunks=1),
        "obs (default chunks=16)": lambda: OBS(data=cal),
        "reconstruction": lambda: Reconstruction(data=cal),
    })  # fmt: skip
    return out


DATA_FREE = ("l1", "l2", "fpgm", "lamp", "bn_scale")


class _Cached(Criterion):
    """Scores computed once (timed) on the first cut, reused by the cuts at other ratios."""

    def __init__(self, crit: Any) -> None:
        self.crit = prunekit.importance.get_importance(crit)
        self.cache: dict[str, torch.Tensor] = {}
        self.seconds = 0.0
        self.prepared = False

    def prepare(self, model: nn.Module, graph: Any) -> None:
        if not self.prepared:
            t0 = time.perf_counter()
            self.crit.prepare(model, graph)
            self.seconds += time.perf_counter() - t0
            self.prepared = True

    def __call__(self, group: Any, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        if group.key not in self.cache:
            t0 = time.perf_counter()
            self.cache[group.key] = self.crit(group, tensors)
            self.seconds += time.perf_counter() - t0
        return self.cache[group.key]


@torch.no_grad()
def accuracy(model: nn.Module, test: list[Batch]) -> float:
    hit = sum(int((model(x).argmax(1) == y).sum()) for x, y in test)
    return 100.0 * hit / sum(len(y) for _, y in test)


def _cuts(task: Task, make: Callable[[], Any]) -> tuple[list[float], float, bool]:
    """Accuracy at each ratio, scoring seconds, and whether the health check warned."""
    crit = _Cached(make())
    accs = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for r in RATIOS:
            res = prunekit.prune(task.model, task.example, ratio=r, importance=crit,
                                 ignore=[task.classifier()], bn_data=task.bn)  # fmt: skip
            accs.append(accuracy(res.model, task.test))
    warned = any(issubclass(w.category, CalibrationWarning) for w in seen)
    return accs, crit.seconds, warned


def _tp_cut(task: Task, crit: str, ratio: float, cal: list[Batch]) -> nn.Module:
    import torch_pruning as tp

    imps = {"l1": lambda: tp.importance.MagnitudeImportance(p=1),
            "l2": lambda: tp.importance.MagnitudeImportance(p=2),
            "fpgm": lambda: tp.importance.FPGMImportance(),
            "lamp": lambda: tp.importance.LAMPImportance(p=2),
            "taylor": lambda: tp.importance.TaylorImportance()}  # fmt: skip
    net = copy.deepcopy(task.model).eval()
    clf = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    pruner = tp.pruner.MetaPruner(net, task.example, importance=imps[crit](),
                                  pruning_ratio=ratio, ignored_layers=[clf])  # fmt: skip
    if crit == "taylor":
        net.zero_grad()
        for b in cal:
            ce(net(b[0]), b).backward()
    pruner.step()
    net.zero_grad(set_to_none=True)
    if task.bn:
        prunekit.recovery.recalibrate_bn(net, task.bn)
    return net


def run_task(
    task: Task, *, seeds: int, tp_crit: tuple[str, ...], log: Any = print
) -> list[dict[str, Any]]:
    """Every row of one task (see the module docstring)."""
    base = accuracy(task.model, task.test)
    rows: list[dict[str, Any]] = []

    def row(criterion: str, source: str, calib: str, accs: list[float], **extra: Any) -> None:
        for r, a in zip(RATIOS, accs):
            rows.append({"task": task.name, "criterion": criterion, "source": source,
                         "calibration": calib, "ratio": r, "acc": round(a, 2),
                         "unpruned_acc": round(base, 2), **extra})  # fmt: skip

    for s in range(seeds):
        accs, _, _ = _cuts(task, lambda s=s: RandomImportance(seed=s))
        row("random", "prunekit", "none", accs, seed=s)
    for calib, cal in (("held-out", task.held), ("train", task.train)):
        made = criteria(cal)
        _cuts(task, made["taylor"])  # warm-up: the first pass pays for lazy initialisation
        taylor_s = max(_cuts(task, made["taylor"])[1], 1e-9)
        for label, make in made.items():
            if label in DATA_FREE and calib == "train":
                continue
            accs, secs, warned = _cuts(task, make)
            c = "none" if label in DATA_FREE else calib
            row(label, "prunekit", c, accs, score_s=round(secs, 4),
                cost_vs_taylor=round(secs / taylor_s, 2), health_warning=warned)  # fmt: skip
            log(f"[{task.name} {c}] {label}: " + " ".join(f"{a:.1f}" for a in accs)
                + f" ({secs / taylor_s:.1f}x taylor)")  # fmt: skip
        for crit in tp_crit:
            if crit != "taylor" and calib == "train":
                continue
            accs = [accuracy(_tp_cut(task, crit, r, cal), task.test) for r in RATIOS]
            row(f"tp:{crit}", "torch-pruning", calib if crit == "taylor" else "none", accs)
    return rows


def _family(task: str) -> str:
    return task.rpartition("-s")[0]


def _mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.1f}" if values else "-"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    """One family's table: mean over model seeds of each (criterion, calibration)."""
    unpruned = {r["task"]: r["unpruned_acc"] for r in rows}
    out = [f"Models: {len(unpruned)} trained; unpruned test accuracy "
           f"{_mean_std(list(unpruned.values()))}.", "",
           "| criterion | calibration | " + " | ".join(f"{r:.0%}" for r in RATIOS)
           + " | cost (× Taylor) | health warning |", "|---|---|" + "---|" * (len(RATIOS) + 2)]  # fmt: skip
    keys: dict[tuple[str, str], None] = {}
    for r in rows:
        keys[(r["criterion"], r["calibration"])] = None
    for crit, calib in keys:
        sel = [r for r in rows if r["criterion"] == crit and r["calibration"] == calib]
        cells = [_mean_std([r["acc"] for r in sel if r["ratio"] == q]) for q in RATIOS]
        costs = [r["cost_vs_taylor"] for r in sel if "cost_vs_taylor" in r]
        cost = f"{statistics.mean(costs):.1f}" if costs else "-"
        warn = "yes" if any(r.get("health_warning") for r in sel) else ""
        out.append(f"| {crit} | {calib} | " + " | ".join(cells) + f" | {cost} | {warn} |")
    return out + [""] + _verdict(rows)


def _verdict(rows: list[dict[str, Any]]) -> list[str]:
    """The acceptance check at 50%: data-driven (held-out) vs random and vs magnitude."""

    def at50(crit: str, calib: str) -> float | None:
        v = [r["acc"] for r in rows if r["criterion"] == crit and r["calibration"] == calib
             and r["ratio"] == 0.5 and r["source"] == "prunekit"]  # fmt: skip
        return statistics.mean(v) if v else None

    rand = at50("random", "none")
    free = {c: at50(c, "none") for c in DATA_FREE if at50(c, "none") is not None}
    driven = {c: at50(c, "held-out") for c in {r["criterion"] for r in rows
              if r["calibration"] == "held-out" and r["source"] == "prunekit"}}  # fmt: skip
    if rand is None or not free or not driven:
        return []
    below = sorted(c for c, v in driven.items() if v is not None and v <= rand)
    best_free = max(free, key=lambda c: free[c] or 0.0)
    best = max(driven, key=lambda c: driven[c] or 0.0)
    return [f"At 50%: random mean {rand:.1f}; best magnitude `{best_free}` {free[best_free]:.1f}; "
            f"best data-driven (held-out) `{best}` {driven[best]:.1f}; data-driven criteria at "
            f"or below the random mean: {', '.join(f'`{c}`' for c in below) or 'none'}.", ""]  # fmt: skip


def render(rows: list[dict[str, Any]], doc: Path, command: str) -> None:
    """Rewrite the criteria section of ``doc`` (between the markers) from ``rows``."""
    lines = [BEGIN, "## Criteria: one-shot accuracy, no training", "",
             f"Generated by `{command}` from [`docs/bench/criteria.jsonl`](bench/criteria.jsonl)"
             " — do not edit by hand. Test accuracy (%) right after cutting 30/50/70% of the "
             "units of every hidden group (`scope=\"local\"`, classifier kept), no training "
             "and no compensation (models with BatchNorm get their running statistics "
             "re-estimated on 256 training samples, no gradient step); mean ± std over the trained model seeds (random: over models × "
             "5+ random seeds). Calibration `held-out`: the validation split; `train`: the "
             "model's own training batches. Cost: scoring time relative to one Taylor pass "
             "on the same data (shared 2-core machine). `tp:` rows are Torch-Pruning's "
             "criteria on the same cuts. How the defaults were chosen: "
             "[criteria_defaults.md](criteria_defaults.md).", ""]  # fmt: skip
    for fam in dict.fromkeys(_family(r["task"]) for r in rows):
        lines += [f"### {fam}", ""] + _table([r for r in rows if _family(r["task"]) == fam])
    lines.append(END)
    text = doc.read_text() if doc.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + "\n".join(lines) + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    doc.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.criteria", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one model seed, digits MLP only")
    ap.add_argument("--tasks", nargs="*", default=None, help=f"from {sorted(TASKS)}")
    ap.add_argument("--model-seeds", type=int, default=3)
    ap.add_argument("--random-seeds", type=int, default=10)
    ap.add_argument("--out", default="docs/bench/criteria.jsonl")
    ap.add_argument("--doc", default="docs/BENCHMARKS.md")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    if not args.render_only:
        tasks = args.tasks or (["digits-mlp"] if args.quick else sorted(TASKS))
        model_seeds = 1 if args.quick else args.model_seeds
        random_seeds = 5 if args.quick else args.random_seeds
        tp_crit = ("l2", "taylor") if args.quick else ("l1", "l2", "fpgm", "lamp", "taylor")
        old = [json.loads(x) for x in out.read_text().splitlines() if x.strip()] if (
            out.exists() and not args.quick) else []  # fmt: skip
        rows = [r for r in old if not any(_family(r["task"]).startswith(n) for n in tasks)]
        out.parent.mkdir(parents=True, exist_ok=True)
        for name in tasks:
            for seed in range(model_seeds if name == "digits-mlp" else 1):
                rows += run_task(TASKS[name](seed), seeds=random_seeds, tp_crit=tp_crit)
                out.write_text("".join(json.dumps(r) + "\n" for r in rows))  # after each model
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    command = "python -m benchmarks.criteria" + (" --quick" if args.quick else "")
    render(rows, Path(args.doc), command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
