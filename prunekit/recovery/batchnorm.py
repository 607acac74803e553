"""Re-estimate BatchNorm running statistics on calibration data (no weight update).

Pruning a layer changes the distribution of everything after it, so the running mean and
variance that BatchNorm layers use at inference go stale: the pruned network then loses far
more accuracy than its weights justify. Re-estimating them on a few hundred samples (no
gradient step) recovers most of that loss at almost no cost.

This module imports nothing from prunekit but :mod:`prunekit.errors` (through
:mod:`prunekit.recovery.batches`), so the pruner itself may call :func:`recalibrate_bn`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import ConfigError, DataError
from .batches import (
    InputsFn,
    batch_size,
    call_model,
    default_inputs,
    kept_indices,
    model_device,
    to_device,
)

__all__ = ["batchnorm_layers", "inherit_bn_statistics", "recalibrate_bn"]


def batchnorm_layers(model: nn.Module) -> list[tuple[str, _BatchNorm]]:
    """Every BatchNorm (1d/2d/3d, lazy, SyncBatchNorm) of ``model`` that tracks running stats.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
        >>> [name for name, _ in batchnorm_layers(net)]
        ['1']
    """
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, _BatchNorm) and m.track_running_stats and m.running_mean is not None
    ]


def _columns(bn: _BatchNorm, stats: bool) -> list[tuple[float, ...]]:
    """Per channel: its affine weight and bias (if any), and with ``stats`` its running stats."""
    cols: list[torch.Tensor | None] = [bn.weight, bn.bias] if bn.affine else []
    cols += [bn.running_mean, bn.running_var] if stats else []
    return list(zip(*(c.tolist() for c in cols if c is not None)))


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
    name: str, bn: _BatchNorm, orig: _BatchNorm, kept: Mapping[str, Sequence[int]] | None
) -> list[int] | str:
    """The original channels ``bn`` kept: given, all, or matched by the values a cut copies
    exactly (affine parameters and running statistics right after the cut; the affine
    parameters alone after a recalibration); else why they cannot be told."""
    n, n_o = bn.num_features, orig.num_features
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
    originals = dict(batchnorm_layers(original))
    skipped: dict[str, str] = {}
    for name, bn in batchnorm_layers(pruned):
        orig = originals.get(name)
        if orig is None:
            skipped[name] = "no BatchNorm of that name in the original"
            continue
        idx = _bn_channels(name, bn, orig, kept)
        if isinstance(idx, str):
            skipped[name] = idx
            continue
        stats = {buf: getattr(orig, buf) for buf in ("running_mean", "running_var")}
        at = torch.as_tensor(idx, dtype=torch.long, device=stats["running_mean"].device)
        with torch.no_grad():
            for buf, value in stats.items():
                getattr(bn, buf).copy_(value.index_select(0, at))
    return skipped


@dataclass
class _Saved:
    """What recalibration changes, to restore it afterwards (or on failure)."""

    training: list[tuple[nn.Module, bool]]
    momentum: list[tuple[_BatchNorm, float | None]]
    stats: list[tuple[_BatchNorm, dict[str, torch.Tensor]]]

    @classmethod
    def take(cls, model: nn.Module, layers: list[_BatchNorm]) -> _Saved:
        stats = [
            (bn, {k: v.detach().clone() for k, v in bn.named_buffers(recurse=False)})
            for bn in layers
        ]
        return cls(
            [(m, m.training) for m in model.modules()], [(bn, bn.momentum) for bn in layers], stats
        )

    def restore_modes(self) -> None:
        for m, flag in self.training:
            m.training = flag
        for bn, momentum in self.momentum:
            bn.momentum = momentum

    def restore_stats(self) -> None:
        with torch.no_grad():
            for bn, buffers in self.stats:
                for k, v in buffers.items():
                    getattr(bn, k).copy_(v)


def _check_limits(batches: int | None, samples: int | None) -> None:
    for name, value in (("batches", batches), ("samples", samples)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(
                f"recalibrate_bn: {name}={value!r} must be a positive int or None (no limit)"
            )


def recalibrate_bn(
    model: nn.Module,
    data: Iterable[Any],
    *,
    batches: int | None = None,
    samples: int | None = 512,
    inputs: InputsFn | None = None,
) -> int:
    """Re-estimate the running mean and variance of every BatchNorm layer of ``model``.

    The running statistics are reset, then the model runs forward under ``no_grad`` with only
    its BatchNorm layers in train mode (dropout and every other layer stay in eval mode), so
    each BatchNorm accumulates the statistics of its actual inputs. The accumulation is a
    cumulative average over batches weighted by batch size (for equal batches this is exactly
    PyTorch's ``momentum=None``): the running mean ends as the mean over all samples, the
    running variance as the size-weighted mean of the per-batch unbiased variances. Training
    flags and momenta are restored afterwards; no parameter changes. Stops after ``batches``
    batches or once ``samples`` samples were seen, whichever comes first.

    Args:
        model: the model, modified in place (only BatchNorm buffers). A
            ``DistributedDataParallel`` wrapper works too.
        data: any iterable of batches: tensors, ``(x, y)`` tuples/lists, or dicts of keyword
            inputs (e.g. a ``DataLoader``).
        batches: use at most this many batches (``None``: no limit).
        samples: stop once this many samples were used (``None``: no limit).
        inputs: ``inputs(batch) -> model inputs``; default ``batch[0]`` for tuples/lists, the
            batch itself otherwise (a dict is passed as keyword arguments).

    Returns:
        The number of samples used; 0 (and nothing is run) when ``model`` has no BatchNorm.

    Raises:
        ConfigError: ``batches`` or ``samples`` is not a positive int or ``None``.
        DataError: ``data`` yielded no batch (the old statistics are kept).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        >>> data = [(torch.randn(16, 3), torch.zeros(16)) for _ in range(4)]
        >>> recalibrate_bn(net, data, samples=40)
        48
        >>> net.training, net[1].momentum
        (True, 0.1)
    """
    _check_limits(batches, samples)
    layers = [bn for _, bn in batchnorm_layers(model)]
    if not layers:
        return 0
    get_inputs = inputs or default_inputs
    saved = _Saved.take(model, layers)
    device = model_device(model)
    seen = 0
    try:
        model.eval()
        for bn in layers:
            bn.reset_running_stats()
            bn.train()
        with torch.no_grad():
            for i, batch in enumerate(data):
                if batches is not None and i >= batches:
                    break
                x = to_device(get_inputs(batch), device)
                n = max(batch_size(x), 1)
                for bn in layers:  # size-weighted cumulative average of the batch statistics
                    bn.momentum = n / (seen + n)
                call_model(model, x)
                seen += n
                if samples is not None and seen >= samples:
                    break
    except BaseException:
        saved.restore_stats()
        raise
    finally:
        saved.restore_modes()
    if seen == 0:
        saved.restore_stats()
        raise DataError(
            "recalibrate_bn: the calibration data yielded no batch; pass a non-empty "
            "DataLoader or list of batches (the BatchNorm statistics were left unchanged)"
        )
    return seen
