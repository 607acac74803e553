"""``run(recipe)``: baseline -> cut (prune or search) -> BN recalibration -> recovery ->
evaluation -> run directory (report, metrics, plan, model)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..export import save
from ..recipe import DataBundle, Recipe, resolve_data
from ..report import RunRecord, layer_widths, write_report
from .baseline import prepare_baseline
from .cut import CutOutcome, cut_prune, cut_search
from .measure import evaluation_dict, measure, newly_wrong
from .recover import recover

__all__ = ["MODES", "Log", "RunResult", "Session", "Stage", "open_session", "run"]

MODES = ("prune", "search")
Log = Callable[[str], None]
"""A one-line progress sink, e.g. ``print``."""


@dataclass
class Session:
    """A recipe with its data and trained baseline resolved (shared by every command)."""

    recipe: Recipe
    data: DataBundle
    baseline: nn.Module
    baseline_source: str
    example: torch.Tensor
    seconds: float


def open_session(recipe: Recipe, *, progress: bool = True, log: Log | None = None) -> Session:
    """Resolve the data and the trained baseline of ``recipe`` (training it if needed)."""
    say = log or (lambda _msg: None)
    start = time.perf_counter()
    if recipe.evaluation.threads is not None:
        torch.set_num_threads(recipe.evaluation.threads)
    data = resolve_data(recipe)
    say(f"data {data.name}: input {data.input_shape}, {data.num_classes} classes")
    model, source = prepare_baseline(recipe, data, progress=progress)
    say(f"baseline {recipe.model.name}: {source}")
    return Session(recipe, data, model, source, data.example_inputs(), time.perf_counter() - start)


@dataclass
class Stage:
    """One row of the before/after table: accuracy and cost after a stage of the run."""

    stage: str
    accuracy: float
    params: int
    macs: int


@dataclass
class RunResult:
    """What :func:`run` did: the run directory, the evaluations, the stages, the plan.

    ``model`` is the pruned, recovered model (not serialised by :meth:`to_dict`).
    """

    run_dir: Path
    report: Path
    baseline: dict[str, Any]
    pruned: dict[str, Any]
    stages: list[Stage]
    plan: dict[str, Any]
    recovery: dict[str, Any]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    model: nn.Module | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (the model is in ``run_dir/model``)."""
        return {
            "run_dir": str(self.run_dir),
            "report": str(self.report),
            "baseline": self.baseline,
            "pruned": self.pruned,
            "stages": [asdict(s) for s in self.stages],
            "plan": self.plan,
            "recovery": self.recovery,
            "timings": self.timings,
            "notes": list(self.notes),
        }


def _stage(name: str, model: nn.Module, evaluation: dict[str, Any]) -> Stage:
    return Stage(name, float(evaluation["accuracy"]), int(evaluation["params"]),
                 int(evaluation["macs"]))  # fmt: skip


def _cut(session: Session, mode: str, progress: bool) -> CutOutcome:
    if mode == "search":
        return cut_search(
            session.baseline, session.recipe, session.data, session.example, progress=progress
        )
    return cut_prune(session.baseline, session.recipe, session.data, session.example)


def _record(
    session: Session, cut: CutOutcome, before: dict[str, Any], after: dict[str, Any], **kw: Any
) -> RunRecord:
    recipe = session.recipe
    return RunRecord(
        title=f"prunekit: {recipe.name}", recipe=recipe.to_dict(), baseline=before,
        pruned=after, layer_widths=layer_widths(session.baseline, cut.model),
        importance=cut.scores, tradeoff=cut.tradeoff, class_names=session.data.class_names,
        **kw,
    )  # fmt: skip


def run(
    recipe: Recipe,
    *,
    mode: str = "prune",
    out_dir: str | Path | None = None,
    progress: bool = True,
    log: Log | None = None,
) -> RunResult:
    """Run a recipe end to end and write its run directory.

    Args:
        recipe: A validated :class:`~prunekit.recipe.Recipe`.
        mode: ``"prune"`` (the ``prune`` section) or ``"search"`` (the ``search`` section).
        out_dir: The run directory (default ``recipe.run_dir()``).
        progress: Show progress bars (training, fine-tuning, search).
        log: Called with one line per stage (e.g. ``print``); ``None`` is silent.

    Returns:
        A :class:`RunResult`. The directory holds ``report.html``, ``report.md``, the PNGs,
        ``metrics.json``, ``record.json``, ``plan.json``, ``recipe.yaml`` and ``model/``
        (:func:`prunekit.load` it with the recipe's model factory).

    Raises:
        ConfigError: ``mode`` is unknown, or the recipe lacks the section it needs.

    Example:
        >>> import tempfile
        >>> from prunekit.recipe import parse_recipe
        >>> tmp = tempfile.mkdtemp()
        >>> r = parse_recipe("model: {name: mlp, kwargs: {hidden: [16]}}\\n"
        ...                  "data: {name: iris}\\ntrain: {epochs: 2, cache: false}\\n"
        ...                  "prune: {ratio: 0.5}\\n"
        ...                  "evaluation: {latency: false}\\n")
        >>> res = run(r, out_dir=tmp + "/run", progress=False)
        >>> res.stages[0].params > res.stages[-1].params, res.report.name
        (True, 'report.html')
    """
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is unknown; use one of {MODES}")
    say = log or (lambda _msg: None)
    timings: dict[str, float] = {}
    session = open_session(recipe, progress=progress, log=say)
    timings["baseline"] = session.seconds
    clock = time.perf_counter()
    base_eval = measure(session.baseline, recipe, session.data)
    before = evaluation_dict(base_eval)
    timings["evaluate baseline"] = time.perf_counter() - clock
    say(f"baseline accuracy {before['accuracy']:.2%}, {before['macs']:,} MACs")
    curves = None
    if recipe.evaluation.sensitivity:
        from .tasks import sensitivity  # tasks builds on this module

        clock = time.perf_counter()
        curves = sensitivity(session).metrics
        timings["sensitivity"] = time.perf_counter() - clock
        say(f"sensitivity: {len(curves)} groups at ratios {recipe.evaluation.sensitivity_ratios}")
    clock = time.perf_counter()
    cut = _cut(session, mode, progress)
    timings[mode] = time.perf_counter() - clock
    cut_eval = evaluation_dict(measure(cut.model, recipe, session.data, latency=False))
    say(f"cut: accuracy {cut_eval['accuracy']:.2%}, {cut_eval['macs']:,} MACs "
        f"(BN recalibrated on {cut.calibrated_samples} samples)")  # fmt: skip
    clock = time.perf_counter()
    done = recover(cut.model, session.baseline, recipe, session.data, progress=progress)
    timings["recover"] = time.perf_counter() - clock
    clock = time.perf_counter()
    final = measure(cut.model, recipe, session.data, reference=session.baseline)
    after = evaluation_dict(final)
    timings["evaluate pruned"] = time.perf_counter() - clock
    say(f"recovered: accuracy {after['accuracy']:.2%}, agreement {after.get('agreement', 0):.2%}")
    stages = [_stage("baseline", session.baseline, before), _stage("cut", cut.model, cut_eval)]
    if done.get("finetune") or done.get("compensate"):
        stages.append(_stage("recovered", cut.model, after))
    notes = list(cut.notes)
    meta = {"mode": mode, "baseline": session.baseline_source, "dataset": session.data.name,
            "split": recipe.evaluation.split, "bn_recalibrated_samples": cut.calibrated_samples,
            "accuracy_after_cut": cut_eval["accuracy"], "torch": torch.__version__}  # fmt: skip
    record = _record(session, cut, before, after, timings=timings, notes=notes, meta=meta,
                     newly_wrong=newly_wrong(final), sensitivity=curves or {})  # fmt: skip
    run_dir = Path(out_dir) if out_dir is not None else recipe.run_dir()
    report = write_report(record, run_dir)
    _write_artefacts(run_dir, session, cut, after, done)
    return RunResult(run_dir, report, before, after, stages, cut.plan.to_dict(), done, timings,
                     notes, cut.model)  # fmt: skip


def _write_artefacts(
    run_dir: Path, session: Session, cut: CutOutcome, after: dict[str, Any], done: dict[str, Any]
) -> None:
    recipe = session.recipe
    cut.plan.to_json(run_dir / "plan.json")
    (run_dir / "recovery.json").write_text(json.dumps(done, indent=1, default=str))
    if cut.search is not None:
        (run_dir / "search.json").write_text(json.dumps(cut.search, indent=1, default=str))
    if not recipe.output.save_model:
        return
    info = {
        "input_shape": list(session.data.input_shape),
        "num_classes": session.data.num_classes,
        "recipe_dir": str(recipe.base_dir.resolve()),
        "recipe_source": recipe.source,
        "evaluation": {k: v for k, v in after.items() if k != "confusion"},
    }
    plan = cut.plan if cut.search is not None else None
    save(copy.deepcopy(cut.model), run_dir / "model", plan=plan, example_inputs=session.example,
         recipe=recipe.to_dict(), metrics=info)  # fmt: skip
