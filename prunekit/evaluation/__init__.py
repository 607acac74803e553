"""Evaluation: quality, stability, cost and sensitivity of a (pruned) model.

The public surface (``__all__``) is the short list below; each family's other names live in
its module, which is the place to import them from (they are also still importable from
``prunekit.evaluation``, as before):

- one report per model and before/after: :func:`evaluate`, :class:`EvaluationReport`,
  :func:`compare`, :class:`Comparison`, :func:`format_table` (:mod:`.suite`, :mod:`.comparison`);
- classification: :func:`accuracy`, :func:`precision_recall_f1`,
  :func:`classification_quality` (:mod:`.quality`: top-k, confusion matrix, per class);
  regression: :func:`regression_quality` (:mod:`.regression`: MAE, MSE, R²); embeddings:
  :func:`cosine_fidelity` (:mod:`.fidelity`);
- confidence calibration: :func:`expected_calibration_error` (:mod:`.confidence`:
  reliability bins, mean confidence);
- stability: :func:`agreement`, :func:`stability` (:mod:`.stability`: error flips),
  :func:`metric_spread` (:mod:`.spread`: mean ± std over seeds, k-fold indices);
- cost: :func:`count_params`, :func:`count_macs`, :func:`measure_cost` (:mod:`.cost`),
  :func:`measure_latency`, :func:`measure_speedup` (:mod:`.latency`),
  :func:`measure_peak_memory` (:mod:`.memory`), :func:`profile_cost`, :func:`compare_cost`
  (:mod:`.cost_profile`);
- language models: :func:`perplexity`, :func:`next_token_agreement` (:mod:`.language`:
  fixed-length windows, explicit stride), :func:`generation_speed` (:mod:`.generation`:
  prefill and decode tokens/s at batch 1);
- :func:`analyze_sensitivity` (:mod:`.sensitivity`): how much each group's pruning costs.

Modules whose names start with ``_`` are machinery, not API.
"""

from prunekit.evaluation.comparison import Comparison, compare, format_table
from prunekit.evaluation.comparison import ComparisonRow as ComparisonRow
from prunekit.evaluation.confidence import DEFAULT_BINS as DEFAULT_BINS
from prunekit.evaluation.confidence import ReliabilityBins as ReliabilityBins
from prunekit.evaluation.confidence import expected_calibration_error
from prunekit.evaluation.confidence import mean_confidence as mean_confidence
from prunekit.evaluation.confidence import probabilities as probabilities
from prunekit.evaluation.confidence import reliability_bins as reliability_bins
from prunekit.evaluation.cost import CostReport as CostReport
from prunekit.evaluation.cost import count_macs, count_params, measure_cost
from prunekit.evaluation.cost import fp32_bytes as fp32_bytes
from prunekit.evaluation.cost import state_dict_bytes as state_dict_bytes
from prunekit.evaluation.cost_profile import CostComparison as CostComparison
from prunekit.evaluation.cost_profile import CostProfile as CostProfile
from prunekit.evaluation.cost_profile import compare_cost, profile_cost
from prunekit.evaluation.deploy import inference_form as inference_form
from prunekit.evaluation.deploy import to_channels_last as to_channels_last
from prunekit.evaluation.fidelity import EmbeddingFidelity as EmbeddingFidelity
from prunekit.evaluation.fidelity import cosine_fidelity
from prunekit.evaluation.fidelity import cosine_similarities as cosine_similarities
from prunekit.evaluation.generation import GenerationSpeed as GenerationSpeed
from prunekit.evaluation.generation import generation_speed
from prunekit.evaluation.language import PerplexityResult as PerplexityResult
from prunekit.evaluation.language import next_token_agreement, perplexity
from prunekit.evaluation.language import window_plan as window_plan
from prunekit.evaluation.latency import LatencyReport as LatencyReport
from prunekit.evaluation.latency import SpeedupReport as SpeedupReport
from prunekit.evaluation.latency import measure_latency, measure_speedup
from prunekit.evaluation.memory import MemoryReport as MemoryReport
from prunekit.evaluation.memory import measure_peak_memory
from prunekit.evaluation.predictions import Predictions as Predictions
from prunekit.evaluation.predictions import collect_predictions as collect_predictions
from prunekit.evaluation.quality import ClassificationQuality as ClassificationQuality
from prunekit.evaluation.quality import PerClass as PerClass
from prunekit.evaluation.quality import accuracy, classification_quality, precision_recall_f1
from prunekit.evaluation.quality import confusion_matrix as confusion_matrix
from prunekit.evaluation.quality import per_class_recall as per_class_recall
from prunekit.evaluation.quality import per_class_scores as per_class_scores
from prunekit.evaluation.quality import top_k_accuracy as top_k_accuracy
from prunekit.evaluation.regression import RegressionQuality as RegressionQuality
from prunekit.evaluation.regression import mean_absolute_error as mean_absolute_error
from prunekit.evaluation.regression import mean_squared_error as mean_squared_error
from prunekit.evaluation.regression import r2_score as r2_score
from prunekit.evaluation.regression import regression_quality
from prunekit.evaluation.sensitivity import DEFAULT_RATIOS as DEFAULT_RATIOS
from prunekit.evaluation.sensitivity import Sensitivity, analyze_sensitivity
from prunekit.evaluation.spread import Spread as Spread
from prunekit.evaluation.spread import kfold_indices as kfold_indices
from prunekit.evaluation.spread import metric_spread
from prunekit.evaluation.spread import metric_spreads as metric_spreads
from prunekit.evaluation.stability import Flip as Flip
from prunekit.evaluation.stability import FlipAnalysis as FlipAnalysis
from prunekit.evaluation.stability import StabilityReport as StabilityReport
from prunekit.evaluation.stability import agreement, stability
from prunekit.evaluation.stability import error_flips as error_flips
from prunekit.evaluation.suite import TASKS as TASKS
from prunekit.evaluation.suite import EvaluationReport, evaluate

from ._runtime import finite_metric as finite_metric  # machinery, kept for old imports

__all__ = [
    "Comparison",
    "EvaluationReport",
    "Sensitivity",
    "accuracy",
    "agreement",
    "analyze_sensitivity",
    "classification_quality",
    "compare",
    "compare_cost",
    "cosine_fidelity",
    "count_macs",
    "count_params",
    "evaluate",
    "expected_calibration_error",
    "format_table",
    "generation_speed",
    "measure_cost",
    "measure_latency",
    "measure_peak_memory",
    "measure_speedup",
    "metric_spread",
    "next_token_agreement",
    "perplexity",
    "precision_recall_f1",
    "profile_cost",
    "regression_quality",
    "stability",
]
