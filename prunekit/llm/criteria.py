"""Scores of LLM structured units from calibration statistics, and FLAP's bias compensation.

The statistics are those of the *input channels* of a block's consumer layers (``o_proj``:
``num_heads * head_dim`` channels; ``down_proj``: one channel per FFN neuron), accumulated
token by token in float64 by :class:`ChannelStats` (count, sum, sum of squares: nothing per
token is kept). With ``W`` the consumer's ``(out, in)`` weight and ``X`` its inputs over
the calibration tokens, the per-channel scores are:

=============  ======================================================  ====================
criterion      per input channel ``j``                                 source
=============  ======================================================  ====================
``wanda_sp``   ``sum_i |W_ij| * ||X_j||_2``                            Wanda-sp (FLAP, 2024)
``flap``       ``Var_tokens(X_j) * ||W_:,j||_2^2``                     FLAP fluctuation
``magnitude``  ``||W_:,j||_2^2`` (+ the producer rows' squares, below)  L2 control, no data
=============  ======================================================  ====================

A unit's score sums its channels' scores: a query head sums its ``head_dim`` channels, an FFN
neuron is one channel. ``magnitude`` adds the squared producer rows (``q_proj`` rows of the
head; ``gate_proj`` and ``up_proj`` rows of the neuron) and takes the square root, i.e. the
L2 norm of every weight of the unit. Lower scores are cut first.

:func:`compensate_bias` is FLAP's compensation: the removed channels' mean contribution
``W[:, R] @ mean(X_R)`` is added to the consumer's bias, so on an input equal to the
calibration mean the output is unchanged (exact in expectation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError, DataError

__all__ = [
    "CRITERIA",
    "ChannelStats",
    "channel_scores",
    "compensate_bias",
    "unit_scores",
]

CRITERIA = ("wanda_sp", "flap", "magnitude")
"""Names accepted by :func:`channel_scores`."""


class ChannelStats:
    """Running per-channel count, sum and sum of squares of a layer's inputs (float64).

    Args:
        channels: Size of the last input dimension.

    Example:
        >>> s = ChannelStats(2)
        >>> s.add(torch.tensor([[1.0, 2.0], [3.0, 2.0]]))
        >>> s.mean.tolist(), s.variance.tolist(), s.norm.tolist()
        ([2.0, 2.0], [1.0, 0.0], [3.1622776601683795, 2.8284271247461903])
    """

    def __init__(self, channels: int) -> None:
        self.count = 0
        self.sum = torch.zeros(channels, dtype=torch.float64)
        self.sumsq = torch.zeros(channels, dtype=torch.float64)

    def add(self, x: torch.Tensor) -> None:
        """Accumulate every token (all leading dims) of ``x``, shape ``(..., channels)``."""
        if x.shape[-1] != self.sum.numel():
            raise DataError(
                f"ChannelStats.add: inputs have {x.shape[-1]} channels, the statistics "
                f"{self.sum.numel()}; one ChannelStats per consumer layer"
            )
        flat = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)
        self.count += flat.shape[0]
        self.sum += flat.sum(0).cpu()
        self.sumsq += flat.square().sum(0).cpu()

    def _need(self) -> int:
        if self.count == 0:
            raise DataError("ChannelStats: no tokens were accumulated; run calibration first")
        return self.count

    @property
    def mean(self) -> torch.Tensor:
        """Mean of each channel over the tokens."""
        return self.sum / self._need()

    @property
    def variance(self) -> torch.Tensor:
        """Population variance of each channel over the tokens (clamped at 0)."""
        n = self._need()
        return (self.sumsq / n - (self.sum / n).square()).clamp_min(0.0)

    @property
    def norm(self) -> torch.Tensor:
        """``||X_j||_2`` over every token."""
        self._need()
        return self.sumsq.sqrt()


def channel_scores(
    criterion: str,
    weight: torch.Tensor,
    stats: ChannelStats | None,
    *,
    producers: Sequence[torch.Tensor] = (),
) -> torch.Tensor:
    """Per-input-channel score of a consumer layer (module docstring table).

    Args:
        criterion: One of :data:`CRITERIA`.
        weight: The consumer's ``(out, in)`` weight.
        stats: Its input statistics (not needed by ``magnitude``).
        producers: ``(in, ...)`` weights whose row ``j`` belongs to channel ``j``
            (``magnitude`` only; FFN: ``gate_proj`` and ``up_proj`` weights).

    Returns:
        float64 tensor of shape ``(in,)``; for ``magnitude`` the *squared* norms (summed per
        unit, then :func:`unit_scores` takes the root).

    Raises:
        ConfigError: If ``criterion`` is unknown, or a data criterion gets no statistics.
    """
    w = weight.detach().to(torch.float64).cpu()
    if criterion == "magnitude":
        score = w.square().sum(0)
        for p in producers:
            score = score + p.detach().to(torch.float64).cpu().reshape(w.shape[1], -1).square().sum(
                1
            )
        return score
    if criterion not in CRITERIA:
        raise ConfigError(f"llm criterion {criterion!r} is unknown; use one of {list(CRITERIA)}")
    if stats is None:
        raise ConfigError(f"llm criterion {criterion!r} needs calibration statistics; got None")
    if criterion == "wanda_sp":
        return w.abs().sum(0) * stats.norm
    return stats.variance * w.square().sum(0)


def unit_scores(criterion: str, channel: torch.Tensor, width: int) -> torch.Tensor:
    """Sum channel scores into units of ``width`` consecutive channels (a head: ``head_dim``;
    an FFN neuron: 1); ``magnitude`` takes the square root (an L2 norm per unit)."""
    if channel.numel() % width:
        raise ConfigError(
            f"unit_scores: {channel.numel()} channels do not split into units of {width}"
        )
    units = channel.reshape(-1, width).sum(1)
    return units.sqrt() if criterion == "magnitude" else units


def compensate_bias(consumer: nn.Linear, removed: torch.Tensor, mean: torch.Tensor) -> None:
    """Add the removed input channels' mean contribution to ``consumer``'s bias (FLAP).

    ``bias += W[:, removed] @ mean[removed]``, computed in float64; a zero bias parameter is
    created first when the layer has none. Call it *before* the channels are sliced away.

    Args:
        consumer: The ``nn.Linear`` whose input channels are about to be removed.
        removed: 1-D long tensor of the removed input channels.
        mean: ``(in,)`` mean of each input channel over the calibration tokens.
    """
    if removed.numel() == 0:
        return
    w = consumer.weight.detach()
    delta = w[:, removed].to(torch.float64).cpu() @ mean[removed].to(torch.float64)
    if consumer.bias is None:
        consumer.bias = nn.Parameter(torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
    with torch.no_grad():
        consumer.bias.add_(delta.to(dtype=w.dtype, device=w.device))
