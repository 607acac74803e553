"""Adaptive allocation across decoder blocks: FLAP's standardised global scores.

Each block's unit scores are standardised per block and per unit kind (z-scores of its query
heads, z-scores of its FFN neurons), so scores of different blocks and kinds compare; the
globally lowest units are removed, each weighted by its parameter count, until ``target``
of the blocks' projection parameters is removed (FLAP, An et al. 2024, "UL-MM").

Units and structure:

* FFN neurons: one candidate each (cost ``3 * hidden``);
* query heads within KV groups: the *k-th removal tranche* of a block removes the k-th
  lowest head of every KV group at once (cost ``num_kv_heads * 2 * hidden * head_dim``;
  score: the mean z-score of those heads), so every group keeps the same count and
  ``num_key_value_heads`` stays; at least one head per group is kept; tranches of a block
  are taken in order (their scores do not decrease);
* ``round_to``: every block's kept FFN width is rounded to a multiple of ``round_to``.

The result is one :class:`~prunekit.llm.budget.BlockCut` per block: the blocks differ, so
``model.config`` cannot describe the model (the pruned modules' own attributes do, and
:func:`prunekit.surgery.llama_blocks.sync_llm_config` records the per-block widths).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ConfigError
from ..surgery.llama_blocks import BlockLayout
from .budget import BlockCut, block_costs, round_ffn

__all__ = ["ALLOCATIONS", "UNIT_KINDS", "adaptive_cuts", "standardise"]

ALLOCATIONS = ("uniform", "adaptive")
UNIT_KINDS = ("heads", "ffn")


def standardise(scores: torch.Tensor) -> torch.Tensor:
    """``(s - mean) / std`` (population std; a constant vector maps to zeros).

    Example:
        >>> standardise(torch.tensor([1.0, 2.0, 3.0])).tolist()
        [-1.224744871391589, 0.0, 1.224744871391589]
    """
    s = scores.to(torch.float64)
    std = s.std(unbiased=False)
    return (s - s.mean()) / std if float(std) > 0 else torch.zeros_like(s)


def _candidates(
    b: int, lay: BlockLayout, hidden: int, scores: dict[str, torch.Tensor], kinds: Sequence[str]
) -> list[tuple[float, int, int, str]]:
    """(z-score, cost, block, kind) of every removable unit of block ``b``."""
    _, per_head, per_neuron = block_costs(lay, hidden)
    out: list[tuple[float, int, int, str]] = []
    if "ffn" in kinds:
        out += [(float(z), per_neuron, b, "ffn") for z in standardise(scores["ffn"])]
    if "heads" in kinds and lay.per_group > 1:
        z = standardise(scores["heads"]).reshape(lay.num_kv_heads, lay.per_group)
        tranches = z.sort(dim=1).values.mean(0)[: lay.per_group - 1]
        cost = lay.num_kv_heads * per_head
        out += [(float(t), cost, b, "heads") for t in tranches]
    return out


def adaptive_cuts(
    layouts: Sequence[BlockLayout],
    hidden: int,
    scores: Sequence[dict[str, torch.Tensor]],
    *,
    target: float,
    units: Sequence[str] = UNIT_KINDS,
    round_to: int = 1,
) -> list[BlockCut]:
    """Per-block cuts removing ``target`` of the blocks' projection parameters by global
    standardised scores (module docstring).

    Args:
        layouts: Layout of every block (unpruned).
        hidden: Hidden size.
        scores: Per block ``{"heads": (num_heads,), "ffn": (intermediate,)}``, higher = keep.
        target: Fraction in ``(0, 1)`` of all blocks' projection parameters to remove.
        units: Unit kinds that may be removed (``"heads"``, ``"ffn"``).
        round_to: Kept FFN widths are multiples of it.

    Raises:
        ConfigError: If ``target`` or ``units`` is malformed, or the lengths differ.
    """
    if isinstance(target, bool) or not 0.0 < float(target) < 1.0:
        raise ConfigError(f"adaptive_cuts: target must be in (0, 1), got {target!r}")
    bad = [u for u in units if u not in UNIT_KINDS]
    if bad or not units:
        raise ConfigError(f"adaptive_cuts: units={list(units)!r}; use a subset of {UNIT_KINDS}")
    if len(layouts) != len(scores):
        raise ConfigError(
            f"adaptive_cuts: {len(layouts)} block layouts but {len(scores)} score sets"
        )
    cands: list[tuple[float, int, int, str]] = []
    for b, (lay, sc) in enumerate(zip(layouts, scores)):
        cands += _candidates(b, lay, hidden, sc, units)
    cands.sort(key=lambda c: c[0])
    budget = float(target) * sum(block_costs(lay, hidden)[0] for lay in layouts)
    heads = [0] * len(layouts)
    ffn = [0] * len(layouts)
    removed = 0.0
    for _, cost, b, kind in cands:
        if removed + cost / 2 > budget:
            continue  # a smaller unit (an FFN neuron) may still fit
        if kind == "ffn":
            if ffn[b] >= layouts[b].intermediate - 1:
                continue
            ffn[b] += 1
        else:
            heads[b] += 1
        removed += cost
    return [
        BlockCut(h, round_ffn(n, lay.intermediate, round_to) if n else 0)
        for h, n, lay in zip(heads, ffn, layouts)
    ]
