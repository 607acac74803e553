"""Evaluation: what a model costs (params, MACs) and how sensitive its groups are."""

from prunekit.evaluation.cost import CostReport, count_macs, count_params, measure_cost
from prunekit.evaluation.sensitivity import DEFAULT_RATIOS, Sensitivity, analyze_sensitivity

__all__ = [
    "DEFAULT_RATIOS",
    "CostReport",
    "Sensitivity",
    "analyze_sensitivity",
    "count_macs",
    "count_params",
    "measure_cost",
]
