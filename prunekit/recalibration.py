"""BatchNorm re-estimation, the pruner's post-cut stage: re-estimate the running statistics
of every layer that keeps them (:func:`recalibrate_bn`), check that the batches fit the model
before anything is cut, name the batch in errors, and warn (also for :mod:`prunekit.search`)
when a BatchNorm model is left with stale statistics.

Which layers keep running statistics, and how to reset and update them, is asked of the
layers' surgery handlers (:meth:`~prunekit.surgery.Handler.running_stats`), so a custom norm
layer with a registered handler is re-estimated too. This module sits below the pruner (it
imports model I/O, checks, errors and surgery only); :mod:`prunekit.recovery` re-exports
:func:`recalibrate_bn` and :func:`batchnorm_layers`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._modelio import (
    InputsFn,
    batch_size,
    call_model,
    default_inputs,
    eval_mode,
    flatten_tensors,
    model_device,
    to_device,
)
from .checks import non_finite
from .errors import ConfigError, DataError, NonFiniteError, PrunekitError
from .surgery import RunningStats, get_handler

__all__ = [
    "batchnorm_layers",
    "check_batches_fit",
    "recalibrate_bn",
    "recalibrate_named",
    "running_stats",
    "warn_stale_bn",
    "warn_stale_bn_after_prune",
]


def batchnorm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every layer of ``model`` that keeps running statistics (its handler's
    :meth:`~prunekit.surgery.Handler.running_stats`): each BatchNorm (1d/2d/3d, lazy,
    SyncBatchNorm) that tracks them.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
        >>> [name for name, _ in batchnorm_layers(net)]
        ['1']
    """
    return [(name, stats.module) for name, stats in running_stats(model)]


def running_stats(model: nn.Module) -> list[tuple[str, RunningStats]]:
    """(name, :class:`~prunekit.surgery.RunningStats`) of every layer that keeps running
    statistics, in module order."""
    out = []
    for name, m in model.named_modules():
        stats = get_handler(m).running_stats(m)
        if stats is not None:
            out.append((name, stats))
    return out


@dataclass
class _Saved:
    """What recalibration changes, to restore it afterwards (or on failure)."""

    training: list[tuple[nn.Module, bool]]
    momentum: list[tuple[RunningStats, float | None]]
    stats: list[tuple[nn.Module, dict[str, torch.Tensor]]]

    @classmethod
    def take(cls, model: nn.Module, layers: list[RunningStats]) -> _Saved:
        stats = [
            (s.module, {k: v.detach().clone() for k, v in s.module.named_buffers(recurse=False)})
            for s in layers
        ]
        return cls(
            [(m, m.training) for m in model.modules()], [(s, s.momentum) for s in layers], stats
        )

    def restore_modes(self) -> None:
        for m, flag in self.training:
            m.training = flag
        for s, momentum in self.momentum:
            s.momentum = momentum

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
    layers = [stats for _, stats in running_stats(model)]
    if not layers:
        return 0
    get_inputs = inputs or default_inputs
    saved = _Saved.take(model, layers)
    device = model_device(model)
    seen = 0
    try:
        model.eval()
        for stats in layers:
            stats.reset()
            stats.module.train()
        with torch.no_grad():
            for i, batch in enumerate(data):
                if batches is not None and i >= batches:
                    break
                x = to_device(get_inputs(batch), device)
                n = max(batch_size(x), 1)
                for stats in layers:  # size-weighted cumulative average of the batch stats
                    stats.momentum = n / (seen + n)
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


def warn_stale_bn(
    model: nn.Module, who: str, missing: str, effect: str, fix: str, *, stacklevel: int = 2
) -> bool:
    """Warn (and return True) if ``model`` has BatchNorm layers that track running statistics:
    ``"{who}: the model has BatchNorm layers and {missing}, so {effect}; {fix}"``.

    ``stacklevel`` counts from the caller of this function (2: its caller's caller)."""
    if not batchnorm_layers(model):
        return False
    warnings.warn(
        f"{who}: the model has BatchNorm layers and {missing}, so {effect}; {fix}",
        UserWarning,
        stacklevel=stacklevel + 1,
    )
    return True


def _shapes(inputs: Any) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in flatten_tensors(inputs)]


def _describe(label: str, index: int, inputs: Any, example_inputs: Any, exc: Exception) -> str:
    got, want = _shapes(inputs), _shapes(example_inputs)
    show = lambda s: s[0] if len(s) == 1 else s  # noqa: E731
    return (
        f"{label} batch {index} has inputs of shape {show(got)} and the model fails on them "
        f"({type(exc).__name__}: {str(exc)[:200]}); example_inputs have shape {show(want)}: "
        "pass batches shaped like example_inputs (any batch size; for (x, y) tuples x is used)"
    )


def check_batches_fit(
    model: nn.Module, sources: list[tuple[str, Any, Any]], example_inputs: Any
) -> None:
    """Raise DataError if the first batch of a source does not fit ``model`` (uncut).

    ``sources``: (label, batches, inputs function). A batch whose input shapes equal the
    example inputs' (batch size aside) is taken as fitting; any other is run once (no grad,
    eval mode) on ``model``, a copy the caller owns. One-shot iterators are not peeked at
    (their batches are checked as they are used).
    """
    want = [s[1:] for s in _shapes(example_inputs)]
    for label, data, get_inputs in sources:
        if isinstance(data, Iterator) or not isinstance(data, Iterable):
            continue
        batch = next(iter(data), None)
        if batch is None:
            continue
        inputs = get_inputs(batch)
        if [s[1:] for s in _shapes(inputs)] == want:
            continue
        try:
            with torch.no_grad(), eval_mode(model):
                call_model(model, inputs)
        except PrunekitError:
            raise
        except Exception as exc:
            raise DataError(_describe(label, 0, inputs, example_inputs, exc)) from exc


class _Counted:
    """Iterate ``data``, remember the index and inputs of the last batch handed out, and
    refuse a batch whose inputs are not finite."""

    def __init__(self, data: Iterable[Any], label: str) -> None:
        self.data, self.label, self.index, self.batch = data, label, -1, None

    def __iter__(self) -> Iterator[Any]:
        for i, batch in enumerate(self.data):
            self.index, self.batch = i, batch
            bad = non_finite(enumerate(flatten_tensors(default_inputs(batch))))
            if bad:
                raise NonFiniteError(
                    f"{self.label} batch {i} holds non-finite inputs (tensor "
                    f"{', '.join(bad[:3])}); BatchNorm statistics estimated on it would be "
                    "NaN: clean the data (torch.nan_to_num) or drop that batch"
                )
            yield batch


def recalibrate_named(
    model: nn.Module, data: Iterable[Any], label: str, example_inputs: Any
) -> int:
    """:func:`~prunekit.recovery.recalibrate_bn` whose failures on a batch raise DataError
    naming the batch (its index and shape, and the example inputs' shape)."""
    counted = _Counted(data, label)
    try:
        return recalibrate_bn(model, counted)
    except PrunekitError:
        raise
    except Exception as exc:
        if counted.index < 0:
            raise DataError(f"{label} could not be iterated ({type(exc).__name__}: {exc})") from exc
        inputs = default_inputs(counted.batch)
        raise DataError(
            _describe(label, counted.index, inputs, example_inputs, exc)
            + "; the model was left as it was"
        ) from exc


def warn_stale_bn_after_prune(model: nn.Module, *, stacklevel: int = 2) -> bool:
    """:func:`warn_stale_bn` for a cut made without ``bn_data`` (and no data-driven
    criterion whose batches could re-estimate the statistics)."""
    return warn_stale_bn(
        model, "prune", "no bn_data",
        "the pruned model keeps the unpruned model's running statistics (accuracy right "
        "after a cut can drop to chance)",
        "pass bn_data=loader (a few batches of training inputs) or call "
        "prunekit.recovery.reestimate_bn(result.model, loader); bn_data=False "
        "silences this", stacklevel=stacklevel + 1,
    )  # fmt: skip
