"""BN re-estimation: fresh BatchNorm running statistics from data (no weight update).

Pruning a layer changes the distribution of everything after it, so the running mean and
variance that BatchNorm layers use at inference go stale: the pruned network then loses far
more accuracy than its weights justify. Re-estimating them on a few hundred samples (no
gradient step) recovers most of that loss at almost no cost.

The re-estimation itself (:func:`reestimate_bn`, :func:`batchnorm_layers`) lives in
:mod:`prunekit.recalibration`, below the pruner, which runs it after every cut; it is
re-exported here. This module adds :func:`inherit_bn_statistics`.

Naming: ``reestimate_bn`` is the name of BN re-estimation ("calibration" alone means the
criteria's calibration data, and "confidence calibration" the ECE of
:mod:`prunekit.evaluation.confidence`); ``recalibrate_bn`` is its former name, kept as an
alias.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..recalibration import batchnorm_layers, recalibrate_bn
from ..recalibration import running_stats as _running_stats
from ..surgery import RunningStats
from .batches import kept_indices

__all__ = ["batchnorm_layers", "inherit_bn_statistics", "reestimate_bn", "recalibrate_bn"]

reestimate_bn = recalibrate_bn
"""BN re-estimation: :func:`prunekit.recalibration.recalibrate_bn` under its new name."""


def _columns(bn: RunningStats, stats: bool) -> list[tuple[float, ...]]:
    """Per channel: the layer's own per-channel parameters (affine weight and bias, if any),
    and with ``stats`` its running statistics."""
    cols: list[torch.Tensor] = [p for _, p in bn.module.named_parameters(recurse=False)]
    cols += list(bn.tensors().values()) if stats else []
    return list(zip(*(c.tolist() for c in cols)))


def _match(pruned: list[tuple[float, ...]], original: list[tuple[float, ...]]) -> list[int] | None:
    """The one increasing assignment of pruned channels to equal original ones, if any."""
    if not pruned or not pruned[0]:
        return None
    where: dict[tuple[float, ...], list[int]] = {}
    for j, key in enumerate(original):
        where.setdefault(key, []).append(j)
    found = [where.get(key, [-1, -1]) for key in pruned]
    if any(len(c) != 1 for c in found) or any(b[0] <= a[0] for a, b in zip(found, found[1:])):
        return None
    return [c[0] for c in found]


def _bn_channels(
    name: str, bn: RunningStats, orig: RunningStats, kept: Mapping[str, Sequence[int]] | None
) -> list[int] | str:
    """The original channels ``bn`` kept: given, all, or matched by the values a cut copies
    exactly (affine parameters and running statistics right after the cut; the affine
    parameters alone after a recalibration); else why they cannot be told."""
    n, n_o = bn.channels, orig.channels
    if kept is not None and name in kept:
        return kept_indices(f"kept_outputs[{name!r}]", kept[name], n, n_o, "BatchNorm channels")
    if n == n_o:
        return list(range(n))
    for stats in (True, False):
        found = _match(_columns(bn, stats), _columns(orig, stats))
        if found is not None and n <= n_o:
            return found
    return (
        "its channels do not match the original's one to one (trained since the cut?); "
        "pass kept_outputs=kept_outputs_from(prune_result)"
    )


def inherit_bn_statistics(
    pruned: nn.Module, original: nn.Module, kept: Mapping[str, Sequence[int]] | None = None
) -> dict[str, str]:
    """Give each BatchNorm of ``pruned`` the running statistics of the same-named BatchNorm
    of ``original`` at the channels it kept (undoing a recalibration, in place).

    Args:
        pruned: the pruned model.
        original: the unpruned model.
        kept: BatchNorm name -> original channels kept (e.g. ``kept_outputs_from(result)``);
            where missing, a BatchNorm with all channels keeps them all, and a narrower one is
            matched by its affine weight and bias, which a cut copies exactly.

    Returns:
        BatchNorm name -> why its statistics were left as they were.

    Example:
        >>> import torch
        >>> bn = torch.nn.BatchNorm1d(4)
        >>> with torch.no_grad():
        ...     _ = bn.weight.copy_(torch.arange(4.0)); _ = bn.running_mean.copy_(torch.arange(4.0))
        >>> small = torch.nn.BatchNorm1d(2)
        >>> with torch.no_grad():
        ...     _ = small.weight.copy_(torch.tensor([1.0, 3.0]))
        >>> inherit_bn_statistics(small, bn), small.running_mean.tolist()
        ({}, [1.0, 3.0])
    """
    originals = dict(_running_stats(original))
    skipped: dict[str, str] = {}
    for name, bn in _running_stats(pruned):
        orig = originals.get(name)
        if orig is None:
            skipped[name] = "no BatchNorm of that name in the original"
            continue
        idx = _bn_channels(name, bn, orig, kept)
        if isinstance(idx, str):
            skipped[name] = idx
            continue
        mine, theirs = bn.tensors(), orig.tensors()
        with torch.no_grad():
            for buf, value in theirs.items():
                at = torch.as_tensor(idx, dtype=torch.long, device=value.device)
                mine[buf].copy_(value.index_select(0, at))
    return skipped
