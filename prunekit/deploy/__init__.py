"""Run time for pruned models: confidence cascades, disagreement flags, ensembles.

Sits on top of :mod:`prunekit.evaluation` and :mod:`prunekit.export`; it knows no layer type
(models are called, never inspected). Not to be confused with
:mod:`prunekit.evaluation.deploy`, the *inference form* (BatchNorm folded) that latency is
timed in.

- :class:`Cascade` (:mod:`.cascade`): a pruned model first, the original only for the rows
  the pruned one is unsure of; :meth:`Cascade.calibrate` picks the thresholds
  (:mod:`.thresholds`), :func:`evaluate_cascade` measures accuracy, fallback and the MACs
  and latency actually spent (:mod:`.report`), :func:`export_cascade_torchscript`
  (:mod:`.script`) and :func:`save_cascade` / :func:`load_cascade` (:mod:`.storage`) ship it;
- :class:`DisagreementDetector` (:mod:`.flags`): flags the inputs where the pruned model
  disagrees with the original or is much less sure, without labels, online and offline
  (:mod:`.flag_report`);
- :class:`Ensemble`, :func:`prune_ensemble`, :func:`evaluate_ensemble` (:mod:`.ensemble`)
  and :func:`select_members` (:mod:`.selection`, greedy selection under a MACs budget).
"""

from prunekit.deploy.cascade import Cascade, CascadeOutput
from prunekit.deploy.confidence import CONFIDENCES, confidence
from prunekit.deploy.ensemble import (
    Ensemble,
    EnsemblePruning,
    EnsembleReport,
    evaluate_ensemble,
    prune_ensemble,
)
from prunekit.deploy.flag_report import FlagReport, PRPoint
from prunekit.deploy.flags import DisagreementDetector, FlagEvent, FlagOutput
from prunekit.deploy.report import CascadeReport, evaluate_cascade
from prunekit.deploy.script import export_cascade_torchscript
from prunekit.deploy.selection import Selection, greedy_selection, select_members
from prunekit.deploy.storage import load_cascade, save_cascade
from prunekit.deploy.thresholds import CalibrationResult
from prunekit.deploy.timing import Timing

__all__ = [
    "CONFIDENCES",
    "CalibrationResult",
    "Cascade",
    "CascadeOutput",
    "CascadeReport",
    "DisagreementDetector",
    "Ensemble",
    "EnsemblePruning",
    "EnsembleReport",
    "FlagEvent",
    "FlagOutput",
    "FlagReport",
    "PRPoint",
    "Selection",
    "Timing",
    "confidence",
    "evaluate_cascade",
    "evaluate_ensemble",
    "export_cascade_torchscript",
    "greedy_selection",
    "load_cascade",
    "prune_ensemble",
    "save_cascade",
    "select_members",
]
