"""OWL: outlier-weighted layer-wise sparsity (Yin et al., 2024, "Outlier Weighed Layerwise
Sparsity: A Missing Secret Sauce for Pruning LLMs to High Sparsity").

A decoder block whose Wanda scores ``|W_ij| * ||X_j||_2`` hold many outliers matters more and
is pruned less. As in the reference implementation:

* the *outlier ratio* ``D_l`` of block ``l`` is the fraction of the scores of all its
  linear layers (concatenated) that exceed ``threshold`` (``M``, default 5) times their mean;
* the ratios are min-max normalised and mapped to ``[0, 2*lambda]``, then centred:
  ``s_l = target - (mapped_l - mean(mapped))``, so the mean of ``s_l`` is the target and the
  spread is ``2*lambda``; a block with more outliers gets a lower sparsity.

Every block of a Llama-layout decoder has the same number of weights, so the overall
sparsity equals the target. Equal ratios give the uniform allocation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ConfigError

__all__ = ["outlier_ratio", "owl_sparsities"]


def outlier_ratio(scores: Sequence[torch.Tensor], threshold: float = 5.0) -> float:
    """Fraction of the scores (every tensor of one block, concatenated) greater than
    ``threshold`` times their mean.

    Example:
        >>> outlier_ratio([torch.tensor([1.0, 1.0, 1.0]), torch.tensor([17.0])], 3.0)
        0.25
    """
    flat = torch.cat([s.detach().reshape(-1).to(torch.float64) for s in scores])
    if flat.numel() == 0:
        return 0.0
    return float((flat > threshold * flat.mean()).sum()) / flat.numel()


def owl_sparsities(ratios: Sequence[float], target: float, lam: float = 0.08) -> list[float]:
    """Per-block sparsities from the outlier ratios (module docstring).

    Raises:
        ConfigError: If a resulting sparsity falls outside ``[0, 1)`` (``lam`` too large
            for ``target``).

    Example:
        >>> [round(s, 3) for s in owl_sparsities([0.01, 0.02, 0.03], 0.5, 0.1)]
        [0.6, 0.5, 0.4]
    """
    r = torch.tensor(list(ratios), dtype=torch.float64)
    span = float(r.max() - r.min()) if r.numel() else 0.0
    if span == 0.0:
        return [float(target)] * r.numel()
    mapped = (r - r.min()) / span * (2.0 * lam)
    out = [float(target - (m - mapped.mean())) for m in mapped]
    if min(out) < 0.0 or max(out) >= 1.0:
        raise ConfigError(
            f"owl: owl_lambda={lam} around sparsity={target} gives block sparsities "
            f"[{min(out):.3f}, {max(out):.3f}] outside [0, 1); use owl_lambda <= "
            f"{min(target, 1.0 - target) / 2:.3f}"
        )
    return out
