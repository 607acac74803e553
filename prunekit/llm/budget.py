"""Uniform allocation for decoder blocks: how many query heads per KV group and FFN neurons
each block loses, from a ratio or a target fraction of the decoder-block parameters
(:func:`uniform_cut`), and the per-block cut (:class:`BlockCut`) every allocation produces.

``round_to`` keeps every FFN width a multiple of ``round_to`` (hardware-friendly widths);
heads stay whole and every KV group loses the same count."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from ..errors import ConfigError
from ..surgery.llama_blocks import BlockLayout

__all__ = ["BlockCut", "UniformCut", "block_costs", "round_ffn", "uniform_cut"]


@dataclass(frozen=True)
class BlockCut:
    """What one block loses: query heads per KV group and FFN neurons."""

    heads_per_group: int
    ffn_neurons: int


@dataclass(frozen=True)
class UniformCut:
    """What every block loses.

    Attributes:
        heads_per_group: Query heads removed from each KV group.
        ffn_neurons: FFN neurons removed.
        block_fraction: Fraction of one block's projection parameters this removes.
    """

    heads_per_group: int
    ffn_neurons: int
    block_fraction: float


def block_costs(lay: BlockLayout, hidden: int) -> tuple[int, int, int]:
    """(all projection params, params of one query head, params of one FFN neuron)."""
    d = lay.head_dim
    attn = 2 * hidden * lay.num_heads * d + 2 * hidden * lay.num_kv_heads * d
    return attn + 3 * hidden * lay.intermediate, 2 * hidden * d, 3 * hidden


def round_ffn(removed: float, intermediate: int, round_to: int) -> int:
    """FFN neurons to remove, near ``removed``, so that the kept width is a positive
    multiple of ``round_to`` (at least ``round_to`` neurons stay).

    Example:
        >>> round_ffn(410, 1536, 64)  # keeps 1152 = 18 * 64
        384
    """
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise ConfigError(f"round_to must be a positive int, got {round_to!r}")
    kept = round((intermediate - removed) / round_to) * round_to
    kept = max(kept, round_to) if intermediate >= round_to else intermediate
    return max(0, min(intermediate - kept, intermediate - 1))


def _check_ratio(value: float | None, name: str) -> float | None:
    if value is not None and (isinstance(value, bool) or not 0.0 <= float(value) < 1.0):
        raise ConfigError(f"uniform_cut: {name} must be in [0, 1), got {value!r}")
    return None if value is None else float(value)


def _heads(lay: BlockLayout, head_ratio: float) -> int:
    per_group = round(head_ratio * lay.per_group)
    if per_group == lay.per_group:
        per_group -= 1
    achieved = per_group / lay.per_group
    if head_ratio > 0 and not math.isclose(achieved, head_ratio, abs_tol=1e-9):
        near = [f"{k / lay.per_group:.3f}" for k in range(lay.per_group)]
        warnings.warn(
            f"uniform_cut: head_ratio={head_ratio} cannot be met with {lay.per_group} query "
            f"heads per KV group ({lay.num_kv_heads} groups); removing {per_group} per group "
            f"({achieved:.3f}); achievable ratios: {near}",
            stacklevel=3,
        )
    return per_group


def uniform_cut(
    lay: BlockLayout,
    hidden: int,
    *,
    head_ratio: float = 0.0,
    ffn_ratio: float | None = None,
    target: float | None = None,
    round_to: int = 1,
) -> UniformCut:
    """The cut of every block (the same everywhere, so one config describes the result).

    Args:
        lay: Layout of a block.
        hidden: Hidden size (the residual stream is never cut).
        head_ratio: Fraction of query heads to remove, rounded to a whole count per KV group
            (a warning names the achievable ratios when it is not exact; ``0.2`` with 3 heads
            per group rounds to 1 per group, 33 %).
        ffn_ratio: Fraction of FFN neurons to remove; exclusive with ``target``.
        target: Fraction of the block's projection parameters to remove: the heads are
            removed first and the FFN neurons fill the rest.

    Raises:
        ConfigError: If a ratio is outside ``[0, 1)``, both or neither of ``ffn_ratio`` and
            ``target`` are given, or the heads alone exceed ``target``.
    """
    head_r = _check_ratio(head_ratio, "head_ratio") or 0.0
    ffn_r, tgt = _check_ratio(ffn_ratio, "ffn_ratio"), _check_ratio(target, "target")
    if (ffn_r is None) == (tgt is None):
        raise ConfigError(
            f"uniform_cut: give exactly one of ffn_ratio and target, got ffn_ratio={ffn_ratio!r}"
            f", target={target!r}"
        )
    per_group = _heads(lay, head_r)
    total, per_head, per_neuron = block_costs(lay, hidden)
    head_params = per_group * lay.num_kv_heads * per_head
    if tgt is not None:
        rest = tgt * total - head_params
        if rest < 0:
            raise ConfigError(
                f"uniform_cut: removing {per_group} head(s) per KV group already removes "
                f"{head_params / total:.3f} of the block, more than target={tgt}; lower head_ratio"
            )
        neurons = round_ffn(rest / per_neuron, lay.intermediate, round_to)
    else:
        neurons = round_ffn((ffn_r or 0.0) * lay.intermediate, lay.intermediate, round_to)
    fraction = (head_params + neurons * per_neuron) / total
    return UniformCut(per_group, int(neurons), fraction)
