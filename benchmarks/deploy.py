"""prunekit.deploy on real offline data: cascades, disagreement flags, pruned ensembles.

    python benchmarks/deploy.py                      # everything, JSON lines to docs/bench/deploy.jsonl
    python benchmarks/deploy.py --only cascade-bc    # one section (cascade-bc, animal, ensemble)

Sections (results in docs/DEPLOY.md):

- ``cascade-bc``: breast_cancer (scikit-learn), an MLP trained here and pruned with
  ``prunekit.prune`` (75% of its hidden units, fine-tuned); the cascade [pruned, original]
  calibrated on validation to the original's accuracy minus 0.2 points, and to the
  original's recall on the malignant class; measured on test;
- ``animal``: animal-mnist ResNet-20 (registry ``resnet20``, widths ``--widths``), pruned to
  1/4 and 1/2 of its MACs and fine-tuned; cascades [4x, original], [2x, original] and
  [4x, 2x, original] at the same accuracy goal; then the disagreement flag of the 4x model,
  calibrated on unlabeled validation data to a 10% flag rate, judged on test against its new
  errors (precision/recall curve), for each drop score;
- ``ensemble``: three MNIST MLPs (seeds 0-2) pruned to 1/3 of their MACs each with another
  criterion (l2, fpgm, l1), against one unpruned member (equal total MACs) and the unpruned
  ensemble; then greedy selection (Caruana) from all of them under one member's MACs.

Trained weights are cached under ``prunekit.data.cache_dir() / "deploy-bench"``. Latency is
timed with one intra-op thread, the cascade and each model alone side by side; on a shared
machine the absolute numbers move, the ratios less.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Subset

import prunekit
from prunekit.data import cache_dir, load_dataset
from prunekit.deploy import (
    Cascade,
    DisagreementDetector,
    Ensemble,
    evaluate_cascade,
    evaluate_ensemble,
    prune_ensemble,
    select_members,
)
from prunekit.errors import SearchError
from prunekit.evaluation import count_macs
from prunekit.models import build_model
from prunekit.recovery import finetune

ROWS: list[dict[str, Any]] = []


def emit(row: dict[str, Any]) -> None:
    ROWS.append(row)
    print(json.dumps(row, default=str), flush=True)


def loaders(splits: Any, batch: int, seed: int = 0) -> tuple[DataLoader, DataLoader, DataLoader]:
    gen = torch.Generator().manual_seed(seed)
    return (
        DataLoader(splits.train, batch_size=batch, shuffle=True, generator=gen),
        DataLoader(splits.val, batch_size=256),
        DataLoader(splits.test, batch_size=256),
    )


def unlabeled(loader: DataLoader) -> list[tuple[torch.Tensor]]:
    return [(x,) for x, _ in loader]


@torch.no_grad()
def accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    hits = total = 0
    for x, y in loader:
        hits += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return hits / total


def cached(
    key: str, build: Callable[[], nn.Module], train: Callable[[nn.Module], Any]
) -> nn.Module:
    """A freshly built model, trained (or loaded from the cache)."""
    path = cache_dir() / "deploy-bench" / f"{key}.safetensors"
    model = build()
    if path.exists():
        model.load_state_dict(load_file(str(path)))
        return model.eval()
    train(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model.eval()


def fit(
    train: DataLoader, val: DataLoader, *, epochs: int, lr: float, seed: int = 0
) -> Callable[[nn.Module], Any]:
    return lambda m: finetune(m, train, optimizer="sgd", lr=lr, momentum=0.9, weight_decay=5e-4,
                              epochs=epochs, lr_schedule="cosine", val_data=val, progress=False,
                              seed=seed)  # fmt: skip


def finetuned(model: nn.Module, key: str, fine: Callable[[nn.Module], Any]) -> nn.Module:
    """``model`` (pruned) fine-tuned in place; the weights cached by key."""
    path = cache_dir() / "deploy-bench" / f"{key}.safetensors"
    if path.exists():
        model.load_state_dict(load_file(str(path)))
    else:
        fine(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model.eval()


def pruned(model: nn.Module, example: torch.Tensor, key: str, fine: Callable[[nn.Module], Any],
           **options: Any) -> nn.Module:  # fmt: skip
    """``prunekit.prune(model, **options)``, then fine-tuned (cached)."""
    return finetuned(prunekit.prune(model, example, **options).model, key, fine)


def run_cascade(dataset: str, names: list[str], stages: list[nn.Module], goal: dict[str, Any],
                val: DataLoader, test: DataLoader) -> None:  # fmt: skip
    """Calibrate on val for ``goal``, measure on test, emit one row."""
    cascade = Cascade(stages, confidence="max_prob")
    try:
        calib = cascade.calibrate(val, **goal).to_dict()
    except SearchError as exc:
        emit({"section": "cascade", "dataset": dataset, "stages": names, "goal": goal,
              "infeasible": str(exc)})  # fmt: skip
        return
    rep = evaluate_cascade(cascade, test, batch_size=256, single_rows=64, runs=10, warmup=2,
                           threads=1)  # fmt: skip
    original = rep.stages[-1]
    emit({
        "section": "cascade", "dataset": dataset, "stages": names, "goal": goal,
        "val": calib, "test": rep.to_dict(), "table": rep.table(names),
        "accuracy_delta_points": 100 * (rep.accuracy - original.accuracy),
        "macs_ratio": rep.macs_ratio, "fallback_rate": rep.fallback_rate,
        "recall": rep.recall, "original_recall": original.recall,
    })  # fmt: skip


def cascade_breast_cancer() -> None:
    splits = load_dataset("breast_cancer", seed=0, val_fraction=0.2, test_fraction=0.2)
    train, val, test = loaders(splits, 32)
    example = torch.zeros(1, *splits.input_shape)
    torch.manual_seed(0)
    build = lambda: build_model("mlp", num_classes=2, input_shape=splits.input_shape)  # noqa: E731
    original = cached("bc-mlp", build, fit(train, val, epochs=20, lr=0.05))
    val_acc = accuracy(original, val)
    with torch.no_grad():
        xv, yv = next(iter(DataLoader(splits.val, batch_size=len(splits.val))))
        pred = original(xv).argmax(1)
    malignant = int(((pred == 0) & (yv == 0)).sum()) / int((yv == 0).sum())  # class 0
    for ratio in (0.75, 0.95):
        small = pruned(original, example, f"bc-mlp-r{int(ratio * 100)}",
                       fit(train, val, epochs=10, lr=0.02), ratio=ratio)  # fmt: skip
        names = [f"pruned {int(ratio * 100)}% units", "original"]
        for goal in ({"target_accuracy": val_acc - 0.002},
                     {"target_recall": {0: malignant}},
                     {"target_recall": {0: malignant}, "target_accuracy": val_acc - 0.002}):  # fmt: skip
            run_cascade("breast_cancer", names, [small, original], goal, val, test)


def animal(widths: tuple[int, ...], epochs: int, subset: int) -> None:
    splits = load_dataset("animal_mnist", seed=0)
    _, val, test = loaders(splits, 128)
    keep = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(0))[:subset]
    train = DataLoader(Subset(splits.train, keep.tolist()), batch_size=128, shuffle=True,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    example = torch.zeros(1, *splits.input_shape)
    torch.manual_seed(0)
    build = lambda: build_model("resnet20", num_classes=10, input_shape=splits.input_shape,  # noqa: E731
                                widths=widths)  # fmt: skip
    tag = "x".join(map(str, widths)) + f"-n{subset}"
    start = time.time()
    original = cached(f"am-resnet20-{tag}-e{epochs}", build, fit(train, val, epochs=epochs, lr=0.1))
    ft = fit(train, val, epochs=2, lr=0.02)
    bn = [x for (x, _), _ in zip(train, range(4))]  # BatchNorm re-estimation right after the cut
    p4 = pruned(original, example, f"am-resnet20-{tag}-e{epochs}-m25", ft, target_macs=0.25,
                bn_data=bn)  # fmt: skip
    p2 = pruned(original, example, f"am-resnet20-{tag}-e{epochs}-m50", ft, target_macs=0.5,
                bn_data=bn)  # fmt: skip
    base = count_macs(original, example)
    emit({"section": "models", "dataset": "animal_mnist", "widths": widths, "epochs": epochs,
          "train_rows": len(keep),
          "macs": {"original": base, "4x": count_macs(p4, example), "2x": count_macs(p2, example)},
          "test_accuracy": {"original": accuracy(original, test), "4x": accuracy(p4, test),
                            "2x": accuracy(p2, test)},
          "val_accuracy": {"original": accuracy(original, val)},
          "train_and_prune_s": time.time() - start})  # fmt: skip
    goal = {"target_accuracy": accuracy(original, val) - 0.002}
    for names, stages in ((["4x", "original"], [p4, original]),
                          (["2x", "original"], [p2, original]),
                          (["4x", "2x", "original"], [p4, p2, original])):  # fmt: skip
        run_cascade("animal_mnist", names, stages, goal, val, test)
    for score in ("prob_drop", "max_prob", "margin", "entropy"):
        det = DisagreementDetector(p4, original, score=score)
        det.calibrate(unlabeled(val), flag_rate=0.1)
        rep = det.analyze(test)
        at10 = next(p for p in rep.pr_curve if p.rate == 0.1)
        emit({"section": "flags", "dataset": "animal_mnist", "model": "4x", "score": score,
              "val_flag_rate": det.calibrated_rate, "test_flag_rate": rep.flag_rate,
              "test_precision": rep.precision, "test_recall": rep.recall,
              "newly_wrong": rep.newly_wrong, "disagreement_rate": rep.disagreement_rate,
              "recall_at_10pct": at10.recall, "precision_at_10pct": at10.precision,
              "pr_curve": [p.__dict__ for p in rep.pr_curve], "curve_table": rep.curve_table(),
              "per_class_disagreement": {c.cls: round(c.disagreement_rate, 4)
                                         for c in rep.per_class}})  # fmt: skip


def ensemble(epochs: int) -> None:
    splits = load_dataset("mnist", seed=0)
    train, val, test = loaders(splits, 64)
    example = torch.zeros(1, *splits.input_shape)
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        build = lambda: build_model("mlp", num_classes=10, input_shape=splits.input_shape)  # noqa: E731
        members.append(cached(f"mnist-mlp-s{seed}-e{epochs}", build,
                              fit(train, val, epochs=epochs, lr=0.05, seed=seed)))  # fmt: skip
    criteria = ["l2", "fpgm", "l1"]
    small6 = []
    for seed, (m, crit) in enumerate(zip(members, criteria)):
        ft = fit(train, val, epochs=3, lr=0.02, seed=seed)
        small6.append(pruned(m, example, f"mnist-mlp-s{seed}-{crit}-m16", ft, target_macs=1 / 6,
                             importance=crit))  # fmt: skip
    # every member with its own plan (its own criterion), each at 1/3 of the MACs
    plans = prune_ensemble(members, example, target_macs=1 / 3,
                           member_options=[{"importance": c} for c in criteria])  # fmt: skip
    small = [finetuned(r.model, f"mnist-mlp-s{i}-{c}-m33", fit(train, val, epochs=3, lr=0.02,
                                                               seed=i))
             for i, (r, c) in enumerate(zip(plans.results, criteria))]  # fmt: skip
    emit({"section": "ensemble-members", "dataset": "mnist", "criteria": criteria,
          "macs_unpruned": [count_macs(m, example) for m in members],
          "macs_pruned": [count_macs(m, example) for m in small],
          "val_accuracy_pruned": [accuracy(m, val) for m in small]})  # fmt: skip
    for combine in ("mean", "vote"):
        others: dict[str, nn.Module] = {f"unpruned member {i}": m for i, m in enumerate(members)}
        others["unpruned ensemble (3x MACs)"] = Ensemble(members, combine=combine)
        rep = evaluate_ensemble(Ensemble(small, combine=combine), test, others=others,
                                name="pruned ensemble (3 x 1/3)")  # fmt: skip
        emit({"section": "ensemble", "dataset": "mnist", "combine": combine,
              "criteria": criteria, "rows": rep.to_dict()["rows"], "table": rep.table()})  # fmt: skip
        library = [*members, *small, *small6]
        labels = ["unpruned s0", "unpruned s1", "unpruned s2",
                  *[f"1/3 {c} s{i}" for i, c in enumerate(criteria)],
                  *[f"1/6 {c} s{i}" for i, c in enumerate(criteria)]]  # fmt: skip
        sel = select_members(library, val, macs_budget=count_macs(members[0], example) * 1.02,
                             combine=combine)  # fmt: skip
        assert sel.ensemble is not None
        emit({"section": "caruana", "dataset": "mnist", "combine": combine,
              "picked": [labels[i] for i in sel.picks], "weights": sel.weights,
              "val_history": sel.history, "macs_per_input": sel.macs_per_input,
              "budget": count_macs(members[0], example),
              "test_accuracy": accuracy(sel.ensemble, test)})  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["cascade-bc", "animal", "ensemble"], default=None)
    ap.add_argument("--widths", default="8,16,32", help="ResNet-20 stage widths (animal)")
    ap.add_argument("--epochs", type=int, default=4, help="animal-mnist training epochs")
    ap.add_argument("--train-subset", type=int, default=3500, help="animal-mnist training rows")
    ap.add_argument("--out", default="docs/bench/deploy.jsonl")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads for training")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    if args.only in (None, "cascade-bc"):
        cascade_breast_cancer()
    if args.only in (None, "animal"):
        animal(tuple(int(w) for w in args.widths.split(",")), args.epochs, args.train_subset)
    if args.only in (None, "ensemble"):
        ensemble(epochs=8)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = "a" if args.only else "w"
    with out.open(mode) as f:
        for row in ROWS:
            f.write(json.dumps(row, default=str) + "\n")
    print(f"wrote {len(ROWS)} rows to {out} in {time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
