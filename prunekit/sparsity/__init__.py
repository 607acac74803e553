"""Weight-level pruning: unstructured and N:M masks, sparsity summary, compact export.

Structured pruning (:func:`prunekit.prune`) removes whole units and makes a model smaller
and faster. Weight-level pruning zeroes single weights: on CPU that saves bytes (with
:func:`save_sparse`), not time, since dense kernels multiply the zeros too (see
:mod:`prunekit.sparsity.prune` for measured numbers).

Example:
    >>> import torch
    >>> from prunekit import sparsity
    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> masked = sparsity.prune_weights(net, 0.5)   # fine-tune `masked` here: zeros stay zero
    >>> plain = sparsity.make_permanent(masked)
    >>> round(sparsity.sparsity_summary(plain).weight_sparsity, 2)
    0.5

    The same through :func:`prunekit.prune` (``granularity="unstructured"`` or ``"2:4"``):

    >>> import prunekit
    >>> res = prunekit.prune(net, torch.randn(1, 8), ratio=0.5, granularity="unstructured")
    >>> round(res.summary().weight_sparsity, 2), type(res.make_permanent()[0]).__name__
    (0.5, 'Linear')
"""

from .export import SparseExport, load_sparse, save_sparse
from .masks import SCOPES, global_masks, nm_mask, parse_pattern, row_mask, unstructured_mask
from .parametrize import WeightMask, apply_mask, has_masks, make_permanent, masks_of
from .prune import prune_weights
from .scores import WeightCriterion, get_weight_criterion, register_weight_criterion
from .summary import LayerSparsity, SparsitySummary, sparsity_summary
from .targets import weight_targets
from .weight_level import GRANULARITIES, WeightPruneResult, is_weight_level, prune_weight_level

__all__ = [
    "GRANULARITIES",
    "SCOPES",
    "LayerSparsity",
    "SparseExport",
    "SparsitySummary",
    "WeightCriterion",
    "WeightMask",
    "apply_mask",
    "get_weight_criterion",
    "global_masks",
    "has_masks",
    "load_sparse",
    "make_permanent",
    "masks_of",
    "nm_mask",
    "parse_pattern",
    "prune_weights",
    "register_weight_criterion",
    "row_mask",
    "save_sparse",
    "sparsity_summary",
    "unstructured_mask",
    "weight_targets",
    "WeightPruneResult",
    "is_weight_level",
    "prune_weight_level",
]
