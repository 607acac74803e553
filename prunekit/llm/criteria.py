"""Scores of LLM structured units from calibration statistics, their registry, and FLAP's
bias compensation.

The statistics are those of the *input channels* of a block's consumer layers (``o_proj``:
``num_heads * head_dim`` channels; ``down_proj``: one channel per FFN neuron), accumulated
token by token in float64 by :class:`ChannelStats` (count, sum, sum of squares, sum of
absolute values and, for least-squares compensation, ``X^T X``; nothing per token is kept).
With ``W`` the consumer's ``(out, in)`` weight and ``X`` its inputs over the calibration
tokens, the per-channel scores are:

==============  ======================================================  ===================
criterion       per input channel ``j``                                 source
==============  ======================================================  ===================
``wanda_sp``    ``sum_i |W_ij| * ||X_j||_2``                            Wanda-sp (FLAP 2024)
``flap``        ``Var_tokens(X_j) * ||W_:,j||_2^2``                     FLAP fluctuation
``activation``  ``mean_tokens |X_j|``                                   Minitron (2024)
``magnitude``   ``||W_:,j||_2^2`` (+ the producer rows' squares, below)  L2 control, no data
``random``      uniform random (``torch.rand``: seed with ``torch.manual_seed``)  control
``taylor``      unit scores from gradients (:mod:`.taylor`), not channels  LLM-Pruner (2023)
==============  ======================================================  ===================

A unit's score sums its channels' scores: a query head sums its ``head_dim`` channels, an FFN
neuron is one channel. ``magnitude`` adds the squared producer rows (``q_proj`` rows of the
head; ``gate_proj`` and ``up_proj`` rows of the neuron) and takes the square root, i.e. the
L2 norm of every weight of the unit. Lower scores are cut first.

**Why a registry of its own.** prunekit's importance registry
(:func:`prunekit.importance.register_importance`) holds criteria of the
:class:`~prunekit.importance.Importance` protocol: ``prepare(model, graph)`` once on the
*unpruned* model, then ``group -> scores`` for any traced dependency group of any
architecture (the conformance battery runs each registered name on the whole zoo). These
criteria need what that protocol cannot give: statistics of one decoder block's consumer
inputs *after the blocks before it were pruned*, i.e. interleaved with the cuts, and they
only exist for Llama-layout blocks. Registering them there would break that contract, so
they have this registry with the same behaviour: :func:`register_llm_criterion` (a
duplicate raises), :func:`get_llm_criterion` (an unknown name raises with the valid names).

:func:`compensate_bias` is FLAP's compensation: the removed channels' mean contribution
``W[:, R] @ mean(X_R)`` is added to the consumer's bias, so on an input equal to the
calibration mean the output is unchanged (exact in expectation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, DataError, RegistryError

__all__ = [
    "CRITERIA",
    "ChannelStats",
    "LLMCriterion",
    "available_llm_criteria",
    "channel_scores",
    "compensate_bias",
    "get_llm_criterion",
    "register_llm_criterion",
    "unit_scores",
]

ChannelFn = Callable[[torch.Tensor, "ChannelStats | None", Sequence[torch.Tensor]], torch.Tensor]
"""``fn(weight float64 (out, in), stats, producers) -> (in,)`` per-channel scores."""


class ChannelStats:
    """Running per-channel count, sum, sum of squares and of absolute values of a layer's
    inputs (float64); with ``gram=True`` also ``X^T X`` (least-squares compensation).

    Args:
        channels: Size of the last input dimension.
        gram: Also accumulate the ``(channels, channels)`` Gram matrix.
        absolute: Accumulate the sum of absolute values (:attr:`abs_mean`; the
            ``activation`` criterion); ``False`` saves a pass over every batch.

    Example:
        >>> s = ChannelStats(2)
        >>> s.add(torch.tensor([[1.0, 2.0], [3.0, -2.0]]))
        >>> s.mean.tolist(), s.variance.tolist(), s.norm.tolist(), s.abs_mean.tolist()
        ([2.0, 0.0], [1.0, 4.0], [3.1622776601683795, 2.8284271247461903], [2.0, 2.0])
    """

    def __init__(self, channels: int, *, gram: bool = False, absolute: bool = True) -> None:
        self.count = 0
        self.sum = torch.zeros(channels, dtype=torch.float64)
        self.sumsq = torch.zeros(channels, dtype=torch.float64)
        self.sumabs = torch.zeros(channels, dtype=torch.float64) if absolute else None
        self.gram = torch.zeros(channels, channels, dtype=torch.float64) if gram else None

    def add(self, x: torch.Tensor) -> None:
        """Accumulate every token (all leading dims) of ``x``, shape ``(..., channels)``.
        A batch's sums (and Gram matrix) are formed in float32 (float64 for float64
        inputs; no float64 copy of a batch) and accumulated in float64."""
        if x.shape[-1] != self.sum.numel():
            raise DataError(
                f"ChannelStats.add: inputs have {x.shape[-1]} channels, the statistics "
                f"{self.sum.numel()}; one ChannelStats per consumer layer"
            )
        raw = x.detach().reshape(-1, x.shape[-1])
        f = raw if raw.dtype == torch.float64 else raw.float()
        self.count += f.shape[0]
        self.sum += f.sum(0).double().cpu()
        self.sumsq += f.square().sum(0).double().cpu()
        if self.sumabs is not None:
            self.sumabs += torch.linalg.vector_norm(f, 1, dim=0).double().cpu()
        if self.gram is not None:
            self.gram += (f.T @ f).to(torch.float64).cpu()

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

    @property
    def abs_mean(self) -> torch.Tensor:
        """``mean_tokens |X_j|``."""
        if self.sumabs is None:
            raise DataError("ChannelStats: built with absolute=False; no sum of |X| was kept")
        return self.sumabs / self._need()


@dataclass(frozen=True)
class LLMCriterion:
    """A registered LLM criterion.

    Attributes:
        name: Its registry name.
        channel: Per-channel score function (``None`` for a gradient criterion, whose unit
            scores come from :func:`prunekit.llm.taylor.taylor_scores`).
        needs_data: It reads calibration statistics.
        root: Units take the square root of their summed channel scores (an L2 norm).
    """

    name: str
    channel: ChannelFn | None
    needs_data: bool = True
    root: bool = False

    @property
    def gradient(self) -> bool:
        """Scores come from the calibration loss's gradients, not from statistics."""
        return self.channel is None


_REGISTRY: dict[str, LLMCriterion] = {}


def register_llm_criterion(
    name: str,
    channel: ChannelFn | None,
    *,
    needs_data: bool = True,
    root: bool = False,
    override: bool = False,
) -> None:
    """Register an LLM criterion (module docstring); a duplicate name raises
    :class:`~prunekit.errors.RegistryError` unless ``override=True``."""
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(f"an LLM criterion name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not override:
        raise RegistryError(
            f"LLM criterion {name!r} is already registered; pass override=True to replace it"
        )
    _REGISTRY[name] = LLMCriterion(name, channel, needs_data, root)


def available_llm_criteria() -> list[str]:
    """The registered LLM criterion names."""
    return list(_REGISTRY)


def get_llm_criterion(name: str) -> LLMCriterion:
    """The criterion registered as ``name``; an unknown name raises
    :class:`~prunekit.errors.RegistryError` listing the valid ones."""
    found = _REGISTRY.get(name) if isinstance(name, str) else None
    if found is None:
        raise RegistryError(
            f"unknown LLM criterion {name!r}; valid names: {', '.join(available_llm_criteria())}"
        )
    return found


def _need_stats(name: str, stats: ChannelStats | None) -> ChannelStats:
    if stats is None:
        raise ConfigError(f"llm criterion {name!r} needs calibration statistics; got None")
    return stats


def _magnitude(
    w: torch.Tensor, _: ChannelStats | None, producers: Sequence[torch.Tensor]
) -> torch.Tensor:
    score = w.square().sum(0)
    for p in producers:
        rows = p.detach().to(torch.float64).cpu().reshape(w.shape[1], -1)
        score = score + rows.square().sum(1)
    return score


register_llm_criterion("magnitude", _magnitude, needs_data=False, root=True)
register_llm_criterion("wanda_sp", lambda w, s, _: w.abs().sum(0) * _need_stats("wanda_sp", s).norm)
register_llm_criterion("flap", lambda w, s, _: _need_stats("flap", s).variance * w.square().sum(0))
register_llm_criterion("activation", lambda w, s, _: _need_stats("activation", s).abs_mean)
register_llm_criterion(
    "random", lambda w, s, _: torch.rand(w.shape[1], dtype=torch.float64), needs_data=False
)
register_llm_criterion("taylor", None)

CRITERIA = tuple(available_llm_criteria())
"""The built-in LLM criterion names (see :func:`available_llm_criteria` for all)."""


def channel_scores(
    criterion: str,
    weight: torch.Tensor,
    stats: ChannelStats | None,
    *,
    producers: Sequence[torch.Tensor] = (),
) -> torch.Tensor:
    """Per-input-channel score of a consumer layer (module docstring table).

    Args:
        criterion: A registered LLM criterion with channel scores (not ``taylor``).
        weight: The consumer's ``(out, in)`` weight.
        stats: Its input statistics (not needed by ``magnitude``/``random``).
        producers: ``(in, ...)`` weights whose row ``j`` belongs to channel ``j``
            (``magnitude`` only; FFN: ``gate_proj`` and ``up_proj`` weights).

    Returns:
        float64 tensor of shape ``(in,)``; for ``magnitude`` the *squared* norms (summed per
        unit, then :func:`unit_scores` takes the root).

    Raises:
        RegistryError: If ``criterion`` is unknown.
        ConfigError: If it has no channel scores, or a data criterion gets no statistics.
    """
    crit = get_llm_criterion(criterion)
    if crit.channel is None:
        raise ConfigError(
            f"llm criterion {criterion!r} scores units from gradients "
            "(prunekit.llm.taylor.taylor_scores), not input channels"
        )
    w = weight.detach().to(torch.float64).cpu()
    return crit.channel(w, stats, producers)


def unit_scores(criterion: str, channel: torch.Tensor, width: int) -> torch.Tensor:
    """Sum channel scores into units of ``width`` consecutive channels (a head: ``head_dim``;
    an FFN neuron: 1); a ``root`` criterion (``magnitude``) takes the square root."""
    if channel.numel() % width:
        raise ConfigError(
            f"unit_scores: {channel.numel()} channels do not split into units of {width}"
        )
    units = channel.reshape(-1, width).sum(1)
    return units.sqrt() if get_llm_criterion(criterion).root else units


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
