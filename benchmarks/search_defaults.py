"""Search defaults, measured: does ``search()`` with its defaults find the small model?

``python -m benchmarks.search_defaults [--runs defaults old manual no-compensation]``

Issue #19's case: a 4-conv BatchNorm CNN on sklearn's digits upsampled to 16x16, trained to
about 97% validation accuracy; ``prunekit.search.search(model, x, metric=val_acc,
tolerance=0.01, recover=<one fine-tuning epoch>)`` should reach at least 2x fewer MACs.

Runs (each one JSON row in ``docs/bench/search_defaults.jsonl``):

* ``defaults``: ``search(..., data=train_batches)`` and nothing else: the default strategies
  (L2 and Reconstruction, global and local) and the default finishing (compensation + BN
  re-estimation before ``recover``);
* ``old``: what the issue measured: one ``l2-global`` strategy, BN re-estimation as
  ``after_cut``, no compensation (the former defaults);
* ``no-compensation``: the defaults with ``compensate=False`` (BN re-estimation only);
* ``no-guard``: the defaults with ``guard_recover=False`` (recover's model always kept, even
  when the epoch lowers the metric), to separate the changes;
* ``manual``: ``prune(target_macs=0.5)`` + compensate + BN re-estimation + the same epoch.

``--widths 8 16 32 32`` runs the same protocol on a narrower CNN (a harder case).

Every row has the MACs ratio (unpruned / chosen), validation and test accuracy, the
search's wall time, the strategies tried and the chosen one. Timings come from a shared,
loaded 2-core machine (one thread): compare them only within one run.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import prunekit
from prunekit.data import load_dataset
from prunekit.evaluation import count_macs
from prunekit.recovery import compensate, reestimate_bn
from prunekit.search import Strategy, search

OUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "search_defaults.jsonl"
RUNS = ("defaults", "old", "no-compensation", "no-guard", "manual")
Batches = list[tuple[torch.Tensor, torch.Tensor]]


def digits16(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Digits split 60/20/20 (stratified, seed 0), images bilinearly upsampled to 16x16."""
    data = load_dataset("digits", seed=seed, val_fraction=0.2, test_fraction=0.2)
    out = {}
    for name in ("train", "val", "test"):
        x, y = getattr(data, name).tensors
        out[name] = (F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False), y)
    return out


def cnn(widths: tuple[int, int, int, int] = (16, 32, 64, 64)) -> nn.Module:
    """4 conv-BN-ReLU blocks (max-pool after the second), global average pool, a classifier."""
    a, b, c, d = widths

    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(
        *block(1, a), *block(a, b), nn.MaxPool2d(2), *block(b, c), *block(c, d),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(d, 10),
    )  # fmt: skip


def batches(x: torch.Tensor, y: torch.Tensor, size: int = 64, shuffle: bool = False) -> Batches:
    order = torch.randperm(len(x)) if shuffle else torch.arange(len(x))
    return [(x[order[i : i + size]], y[order[i : i + size]]) for i in range(0, len(x), size)]


def accuracy(model: nn.Module, split: tuple[torch.Tensor, torch.Tensor]) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(split[0]).argmax(1) == split[1]).float().mean())


def one_epoch(train: tuple[torch.Tensor, torch.Tensor], lr: float) -> Callable[[nn.Module], Any]:
    """The quick recovery: one epoch of SGD (momentum 0.9, batch 64, shuffled)."""

    def recover(model: nn.Module) -> nn.Module:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        model.train()
        for xb, yb in batches(*train, shuffle=True):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        return model.eval()

    return recover


def train_model(
    data: dict[str, Any], widths: tuple[int, int, int, int], target: float, max_epochs: int
) -> tuple[nn.Module, int]:
    """Train from seed 0 until validation accuracy reaches ``target`` (about 97%)."""
    torch.manual_seed(0)
    model, step = cnn(widths), one_epoch(data["train"], lr=0.02)
    for epoch in range(1, max_epochs + 1):
        step(model)
        if accuracy(model, data["val"]) >= target:
            return model, epoch
    return model, max_epochs


def run_search(name: str, model: nn.Module, data: dict[str, Any], calib: Batches) -> dict[str, Any]:
    x1 = data["train"][0][:1]
    kwargs: dict[str, Any] = {
        "metric": lambda m: accuracy(m, data["val"]),
        "tolerance": 0.01,
        "recover": one_epoch(data["train"], lr=0.01),
        "progress": True,
    }
    if name == "defaults":
        kwargs["data"] = calib
    elif name == "no-compensation":
        kwargs.update(data=calib, compensate=False)
    elif name == "no-guard":
        kwargs.update(data=calib, guard_recover=False)
    else:  # "old": the call, with the former defaults spelled out
        kwargs.update(strategies=[Strategy()], after_cut=lambda m: reestimate_bn(m, calib),
                      compensate=False, guard_recover=False)  # fmt: skip
    start = time.perf_counter()
    res = search(model, x1, **kwargs)
    seconds = time.perf_counter() - start
    print(res, file=sys.stderr)
    best_of = {}
    for p in res.points:
        if p.satisfied and (p.strategy not in best_of or p.macs < best_of[p.strategy]):
            best_of[p.strategy] = p.macs
    return {
        "run": name,
        "macs_ratio": res.baseline.macs / res.best.macs,
        "val": accuracy(res.model, data["val"]),
        "test": accuracy(res.model, data["test"]),
        "seconds": round(seconds, 1),
        "strategies": res.tried,
        "default_strategies": res.default_strategies,
        "chosen": res.best.strategy,
        "finishing": res.finishing,
        "points": len(res.points),
        "recover_refused": sum(
            p.recovered is not None and not all(p.recovered) for p in res.points
        ),
        "best_ratio_per_strategy": {k: res.baseline.macs / v for k, v in best_of.items()},
        "notes": res.notes,
    }


def run_manual(model: nn.Module, data: dict[str, Any], calib: Batches) -> dict[str, Any]:
    x1 = data["train"][0][:1]
    start = time.perf_counter()
    torch.manual_seed(0)
    small = prunekit.prune(model, x1, target_macs=0.5, scope="global", bn_data=False).model
    compensate(small, model, calib)
    reestimate_bn(small, calib)
    one_epoch(data["train"], lr=0.01)(small)
    return {
        "run": "manual",
        "macs_ratio": count_macs(model, x1) / count_macs(small, x1),
        "val": accuracy(small, data["val"]),
        "test": accuracy(small, data["test"]),
        "seconds": round(time.perf_counter() - start, 1),
        "strategies": ["l2-global (target_macs=0.5)"],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--widths",
        type=int,
        nargs=4,
        default=[16, 32, 64, 64],
        help="channels of the 4 convolutions (the issue's case: 16 32 64 64)",
    )
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    data = digits16()
    start = time.perf_counter()
    widths = (args.widths[0], args.widths[1], args.widths[2], args.widths[3])
    model, epochs = train_model(data, widths, target=0.97, max_epochs=40)
    common = {
        "model": f"4-conv BN CNN ({'-'.join(map(str, widths))}), digits 16x16",
        "train_epochs": epochs,
        "train_seconds": round(time.perf_counter() - start, 1),
        "unpruned_val": accuracy(model, data["val"]),
        "unpruned_test": accuracy(model, data["test"]),
        "unpruned_macs": count_macs(model, data["train"][0][:1]),
        "torch": torch.__version__,
    }
    print(json.dumps(common), file=sys.stderr)
    torch.manual_seed(1)
    calib = batches(*data["train"], shuffle=True)  # every training image, fixed batches of 64
    rows = []
    for name in args.runs:
        original = copy.deepcopy(model.state_dict())
        row = (
            run_manual(model, data, calib)
            if name == "manual"
            else run_search(name, model, data, calib)
        )
        assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())
        rows.append({**common, **row})
        print(json.dumps(rows[-1]), file=sys.stderr)
        with args.out.open("a") as fh:
            fh.write(json.dumps(rows[-1]) + "\n")


if __name__ == "__main__":
    main()
