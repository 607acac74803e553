"""``run(recipe)``: baseline -> cut (prune or search) -> BN recalibration -> recovery ->
evaluation -> run directory (report, metrics, plan, model)."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..errors import ConfigError
from ..evaluation._runtime import fixed_threads
from ..export import save
from ..plan import PruningPlan
from ..recipe import Recipe
from ..report import RunRecord, layer_widths, write_report
from .cut import CutOutcome, cut_prune, cut_search
from .measure import evaluation_dict, measure, newly_wrong
from .progress import Progress, RunInterrupted
from .ranks import rank_directory
from .recover import recover
from .session import Log, Session, open_session
from .tasks import sensitivity

__all__ = [
    "MODES", "Log", "RunInterrupted", "RunResult", "Session", "Stage", "open_session", "run",
]  # fmt: skip

MODES = ("prune", "search")


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

    ``model`` is the pruned, recovered model (not serialised by :meth:`to_dict`); ``split``
    is the data split the accuracies were measured on (``"val"`` or ``"test"``).
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
    split: str = "test"

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
            "split": self.split,
        }


def _stage(name: str, model: nn.Module, evaluation: dict[str, Any]) -> Stage:
    return Stage(name, float(evaluation["accuracy"]), int(evaluation["params"]),
                 int(evaluation["macs"]))  # fmt: skip


def _cut(session: Session, mode: str, progress: bool, checkpoint: Path) -> CutOutcome:
    if mode == "search":
        return cut_search(
            session.baseline, session.recipe, session.data, session.example, progress=progress,
            checkpoint=checkpoint,
        )  # fmt: skip
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
    resume: bool = False,
) -> RunResult:
    """Run a recipe end to end and write its run directory.

    Args:
        recipe: A validated :class:`~prunekit.recipe.Recipe`.
        mode: ``"prune"`` (the ``prune`` section) or ``"search"`` (the ``search`` section).
        out_dir: The run directory (default ``recipe.run_dir()``).
        progress: Show progress bars (training, fine-tuning, search).
        log: Called with one line per stage (e.g. ``print``); ``None`` is silent.
        resume: Reuse the stages an earlier, interrupted run of the same recipe and mode
            finished in ``out_dir`` (baseline evaluation, sensitivity, cut, recovery).

    Returns:
        A :class:`RunResult`. The directory holds ``report.html``, ``report.md``, the PNGs,
        ``metrics.json``, ``record.json``, ``plan.json``, ``recipe.yaml`` and ``model/``
        (:func:`prunekit.load` it with the recipe's model factory).

    Raises:
        ConfigError: ``mode`` is unknown, or the recipe lacks the section it needs.
        RunInterrupted: Ctrl-C (a ``KeyboardInterrupt``); ``out_dir`` keeps what finished
            (``metrics.json`` and the resumable stages).

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
    run_dir = Path(out_dir) if out_dir is not None else recipe.run_dir()
    with rank_directory(run_dir, resume=resume) as own_dir:  # torchrun: rank 0 writes run_dir
        main = own_dir == run_dir
        track = Progress.start(own_dir, recipe, mode, resume=resume)
        try:
            with fixed_threads(recipe.threads):
                result = _stages(
                    recipe, mode, track, progress and main, (log if main else None) or _silent
                )
        except KeyboardInterrupt as exc:
            if isinstance(exc, RunInterrupted):
                raise
            raise track.interrupted() from None
        track.clear()
    return result


def _silent(_msg: str) -> None:
    """The log of a run that prints nothing (and of every rank but 0 under torchrun)."""


def _timed(timings: dict[str, float], name: str, clock: float) -> None:
    timings[name] = time.perf_counter() - clock


def _stages(recipe: Recipe, mode: str, track: Progress, progress: bool, say: Log) -> RunResult:
    timings: dict[str, float] = {}
    split = recipe.evaluation.split
    with track.stage("baseline"), distributed.main_first():  # rank 0 trains/caches first
        session = open_session(recipe, progress=progress, log=say)
    timings["baseline"] = session.seconds
    with track.stage("evaluate baseline"):
        clock = time.perf_counter()
        before = track.reuse("evaluate baseline") or evaluation_dict(
            measure(session.baseline, recipe, session.data)
        )
        track.finish("evaluate baseline", before)
        _timed(timings, "evaluate baseline", clock)
    say(f"baseline: {split} accuracy {before['accuracy']:.2%}, {before['macs']:,} MACs")
    curves = _sensitivity(session, track, timings, say) if recipe.evaluation.sensitivity else None
    with track.stage(mode):
        clock = time.perf_counter()
        cut, cut_eval = _cut_stage(session, mode, track, progress)
        _timed(timings, mode, clock)
    say(f"cut: {split} accuracy {cut_eval['accuracy']:.2%}, {cut_eval['macs']:,} MACs "
        f"({_bn_note(cut.calibrated_samples)})")  # fmt: skip
    with track.stage("recover"):
        clock = time.perf_counter()
        done = _recover_stage(session, cut, track, progress)
        _timed(timings, "recover", clock)
    with track.stage("evaluate pruned"):
        clock = time.perf_counter()
        final = measure(cut.model, recipe, session.data, reference=session.baseline)
        after = evaluation_dict(final)
        _timed(timings, "evaluate pruned", clock)
    say(f"recovered: {split} accuracy {after['accuracy']:.2%}, "
        f"agreement {after.get('agreement', 0):.2%}")  # fmt: skip
    if track.reused:
        say(f"resumed: reused {', '.join(track.reused)} from {track.run_dir}")
    return _finish(session, mode, cut, (before, cut_eval, after), done, final, curves, timings,
                   track.run_dir)  # fmt: skip


def _bn_note(samples: int) -> str:
    return f"BN recalibrated on {samples} samples" if samples else "no BatchNorm layers"


def _sensitivity(
    session: Session, track: Progress, timings: dict[str, float], say: Log
) -> dict[str, dict[float, float]]:
    with track.stage("sensitivity"):
        clock = time.perf_counter()
        stored = track.reuse("sensitivity")
        if stored is not None:
            curves = {g: {float(r): float(m) for r, m in c.items()} for g, c in stored.items()}
        else:
            curves = sensitivity(session).metrics
        track.finish("sensitivity", curves)
        _timed(timings, "sensitivity", clock)
    ratios = session.recipe.evaluation.sensitivity_ratios
    say(f"sensitivity: {len(curves)} groups at ratios {ratios}")
    return curves


def _cut_stage(
    session: Session, mode: str, track: Progress, progress: bool
) -> tuple[CutOutcome, dict[str, Any]]:
    stored = track.result("cut")
    model = track.load_model("cut", session.baseline) if stored is not None else None
    if stored is not None and model is not None:
        track.reuse("cut")
        plan_data = stored["plan"]
        plan = PruningPlan.from_dict(plan_data)  # one step, or a list (plan_kind "schedule")
        cut = CutOutcome(model, plan, stored["scores"], stored["tradeoff"], stored["notes"],
                         stored["search"], stored["calibrated_samples"])  # fmt: skip
        return cut, stored["evaluation"]
    cut = _cut(session, mode, progress, track.folder / "search")
    cut_eval = evaluation_dict(measure(cut.model, session.recipe, session.data, latency=False))
    kind = "schedule" if cut.plan.is_stepped else "plan"
    track.save_model(
        "cut", cut.model, session.example, cut.plan if cut.search is not None else None
    )
    track.finish("cut", {
        "evaluation": cut_eval, "plan": cut.plan.to_dict(), "plan_kind": kind,
        "scores": cut.scores, "tradeoff": cut.tradeoff, "notes": cut.notes,
        "search": cut.search, "calibrated_samples": cut.calibrated_samples,
    })  # fmt: skip
    return cut, cut_eval


def _recover_stage(
    session: Session, cut: CutOutcome, track: Progress, progress: bool
) -> dict[str, Any]:
    stored = track.result("recover")
    model = track.load_model("recover", session.baseline) if stored is not None else None
    if stored is not None and model is not None:
        track.reuse("recover")
        cut.model = model
        return dict(stored)
    done = recover(cut.model, session.baseline, session.recipe, session.data, progress=progress,
                   searched=cut.search is not None)  # fmt: skip
    track.save_model(
        "recover", cut.model, session.example, cut.plan if cut.search is not None else None
    )
    track.finish("recover", done)
    return done


def _finish(
    session: Session,
    mode: str,
    cut: CutOutcome,
    evals: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
    done: dict[str, Any],
    final: Any,
    curves: dict[str, dict[float, float]] | None,
    timings: dict[str, float],
    run_dir: Path,
) -> RunResult:
    """Write the report and artefacts of a finished run; its :class:`RunResult`."""
    recipe = session.recipe
    before, cut_eval, after = evals
    stages = [_stage("baseline", session.baseline, before), _stage("cut", cut.model, cut_eval)]
    if done.get("finetune") or done.get("compensate"):
        stages.append(_stage("recovered", cut.model, after))
    notes = list(cut.notes)
    meta = {"mode": mode, "baseline": session.baseline_source, "dataset": session.data.name,
            "split": recipe.evaluation.split, "bn_recalibrated_samples": cut.calibrated_samples,
            "accuracy_after_cut": cut_eval["accuracy"], "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "latency_threads": recipe.evaluation.latency_threads or torch.get_num_threads()}  # fmt: skip
    record = _record(session, cut, before, after, timings=timings, notes=notes, meta=meta,
                     newly_wrong=newly_wrong(final), sensitivity=curves or {})  # fmt: skip
    report = write_report(record, run_dir)
    _write_artefacts(run_dir, session, cut, after, done)
    return RunResult(run_dir, report, before, after, stages, cut.plan.to_dict(), done, timings,
                     notes, cut.model, split=recipe.evaluation.split)  # fmt: skip


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
