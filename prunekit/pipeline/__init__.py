"""The recipe pipeline: ``run(recipe)`` trains or loads the baseline, cuts (prune or search),
recalibrates BatchNorm, recovers, evaluates, and writes a run directory with the report."""

from .baseline import baseline_key, baseline_path, prepare_baseline
from .cut import CutOutcome, build_importance, cut_prune, cut_search, reestimate
from .measure import accuracy_on, evaluation_dict, measure, newly_wrong
from .progress import Progress, RunInterrupted
from .recover import recover
from .run import MODES, Log, RunResult, Session, Stage, open_session, run
from .tasks import EXPORT_FORMATS, export_run, load_run_model, sensitivity, write_sensitivity

__all__ = [
    "EXPORT_FORMATS",
    "MODES",
    "Log",
    "CutOutcome",
    "Progress",
    "RunInterrupted",
    "RunResult",
    "Session",
    "Stage",
    "accuracy_on",
    "baseline_key",
    "baseline_path",
    "build_importance",
    "reestimate",
    "cut_prune",
    "cut_search",
    "evaluation_dict",
    "export_run",
    "load_run_model",
    "measure",
    "newly_wrong",
    "open_session",
    "prepare_baseline",
    "recover",
    "run",
    "sensitivity",
    "write_sensitivity",
]
