"""Evaluation: what a model costs (params, MACs) and, later, how well it does."""

from prunekit.evaluation.cost import CostReport, count_macs, count_params, measure_cost

__all__ = ["CostReport", "count_macs", "count_params", "measure_cost"]
