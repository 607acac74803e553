"""Evaluation: quality, stability, cost and sensitivity of a (pruned) model.

- :func:`evaluate` / :func:`compare` / :func:`format_table`: one report per model, before/after
  deltas and ratios, a terminal table;
- quality metrics over tensors: :func:`accuracy`, :func:`top_k_accuracy`,
  :func:`precision_recall_f1`, :func:`confusion_matrix`, regression errors, embedding fidelity;
- stability: :func:`agreement`, :func:`error_flips`, calibration (:func:`expected_calibration_error`),
  :func:`metric_spread` over seeds and :func:`kfold_indices`;
- cost: :func:`count_params`, :func:`count_macs`, :func:`state_dict_bytes`,
  :func:`measure_peak_memory`, :func:`measure_latency`, :func:`measure_speedup` (two models
  timed in interleaved rounds), :func:`profile_cost`, :func:`compare_cost`;
- :func:`analyze_sensitivity`: how much each group's pruning costs in a metric.
"""

from prunekit.evaluation.calibration import (
    DEFAULT_BINS,
    ReliabilityBins,
    expected_calibration_error,
    mean_confidence,
    probabilities,
    reliability_bins,
)
from prunekit.evaluation.comparison import Comparison, ComparisonRow, compare, format_table
from prunekit.evaluation.cost import (
    CostReport,
    count_macs,
    count_params,
    fp32_bytes,
    measure_cost,
    state_dict_bytes,
)
from prunekit.evaluation.cost_profile import CostComparison, CostProfile, compare_cost, profile_cost
from prunekit.evaluation.deploy import inference_form, to_channels_last
from prunekit.evaluation.fidelity import EmbeddingFidelity, cosine_fidelity, cosine_similarities
from prunekit.evaluation.latency import (
    LatencyReport,
    SpeedupReport,
    measure_latency,
    measure_speedup,
)
from prunekit.evaluation.memory import MemoryReport, measure_peak_memory
from prunekit.evaluation.predictions import Predictions, collect_predictions
from prunekit.evaluation.quality import (
    ClassificationQuality,
    PerClass,
    accuracy,
    classification_quality,
    confusion_matrix,
    per_class_recall,
    per_class_scores,
    precision_recall_f1,
    top_k_accuracy,
)
from prunekit.evaluation.regression import (
    RegressionQuality,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    regression_quality,
)
from prunekit.evaluation.sensitivity import DEFAULT_RATIOS, Sensitivity, analyze_sensitivity
from prunekit.evaluation.spread import Spread, kfold_indices, metric_spread, metric_spreads
from prunekit.evaluation.stability import (
    Flip,
    FlipAnalysis,
    StabilityReport,
    agreement,
    error_flips,
    stability,
)
from prunekit.evaluation.suite import TASKS, EvaluationReport, evaluate

from ._runtime import finite_metric

__all__ = [
    "inference_form",
    "to_channels_last",
    "finite_metric",
    "DEFAULT_BINS",
    "DEFAULT_RATIOS",
    "TASKS",
    "ClassificationQuality",
    "Comparison",
    "ComparisonRow",
    "CostComparison",
    "CostProfile",
    "CostReport",
    "EmbeddingFidelity",
    "EvaluationReport",
    "Flip",
    "FlipAnalysis",
    "LatencyReport",
    "SpeedupReport",
    "MemoryReport",
    "PerClass",
    "Predictions",
    "RegressionQuality",
    "ReliabilityBins",
    "Sensitivity",
    "Spread",
    "StabilityReport",
    "accuracy",
    "agreement",
    "analyze_sensitivity",
    "classification_quality",
    "collect_predictions",
    "compare",
    "compare_cost",
    "confusion_matrix",
    "cosine_fidelity",
    "cosine_similarities",
    "count_macs",
    "count_params",
    "error_flips",
    "evaluate",
    "expected_calibration_error",
    "format_table",
    "fp32_bytes",
    "kfold_indices",
    "mean_absolute_error",
    "mean_confidence",
    "mean_squared_error",
    "measure_cost",
    "measure_latency",
    "measure_speedup",
    "measure_peak_memory",
    "metric_spread",
    "metric_spreads",
    "per_class_recall",
    "per_class_scores",
    "precision_recall_f1",
    "probabilities",
    "profile_cost",
    "r2_score",
    "regression_quality",
    "reliability_bins",
    "stability",
    "state_dict_bytes",
    "top_k_accuracy",
]
