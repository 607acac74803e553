"""Shared plumbing for running a model during evaluation (private to ``prunekit.evaluation``).

Inputs may be a tensor (``model(x)``), a tuple/list of positional inputs (``model(*x)``) or a
dict of keyword inputs (``model(**x)``); every tensor in them shares a leading batch dimension.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from prunekit._modelio import eval_mode, flatten_tensors, model_device, to_device
from prunekit._modelio import map_tensors as _map_tensors
from prunekit.errors import ConfigError

__all__ = [
    "finite_metric",
    "batch_size_of",
    "native_noise_filtered",
    "eval_mode",
    "fixed_threads",
    "model_device",
    "resize_batch",
    "to_device",
]


@contextmanager
def fixed_threads(threads: int | None) -> Iterator[int]:
    """Run with ``torch.set_num_threads(threads)`` and restore the old count afterwards.

    ``None`` keeps the current count. Yields the count in force.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with fixed_threads(1) as n:
        ...     n, torch.get_num_threads()
        (1, 1)
        >>> torch.get_num_threads() == before
        True
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise ConfigError(f"threads={threads!r} must be a positive int or None (keep current)")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads!r} must be >= 1, or None to keep the current count")
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


PROFILER_NOISE = re.compile(r"\.cpp:\d+\] profiler_(start|stop)\b")
"""Lines torch's native profiler writes to the process's stderr on every start and stop."""


@contextmanager
def native_noise_filtered(pattern: re.Pattern[str] = PROFILER_NOISE) -> Iterator[None]:
    """Capture what native code writes to file descriptor 2 inside the block and write back
    every line that does not match ``pattern`` (torch.profiler's ``profiler_start`` /
    ``profiler_stop`` lines), so real errors still reach stderr.

    Example:
        >>> with native_noise_filtered():
        ...     _ = os.write(2, b"SyncActivityProfilerHandler.cpp:52] profiler_start\\n")
    """
    fd = 2  # native code writes to the process's descriptor 2, whatever sys.stderr is
    sys.stderr.flush()
    try:
        saved = os.dup(fd)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            capture.seek(0)
            kept = [ln for ln in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if not pattern.search(ln)]  # fmt: skip
            if kept:
                os.write(fd, "".join(kept).encode())


def batch_size_of(inputs: Any) -> int:
    """The leading dimension of the first tensor in ``inputs``.

    Example:
        >>> import torch
        >>> batch_size_of((torch.zeros(3, 2), torch.zeros(3)))
        3
    """
    for tensor in flatten_tensors(inputs):
        if tensor.dim() > 0:
            return int(tensor.shape[0])
    raise ConfigError(
        f"inputs of type {type(inputs).__name__} hold no tensor with a batch dimension; pass a "
        "tensor, a tuple/list of tensors or a dict of tensors whose first dim is the batch"
    )


def resize_batch(inputs: Any, batch_size: int) -> Any:
    """The same inputs with a batch of ``batch_size`` rows (the first rows, cycled if short).

    Tensors without a batch dimension and non-tensor values are passed through unchanged.

    Example:
        >>> import torch
        >>> resize_batch(torch.tensor([[1], [2]]), 5).flatten().tolist()
        [1, 2, 1, 2, 1]
        >>> resize_batch({"x": torch.arange(4), "flag": True}, 2)
        {'x': tensor([0, 1]), 'flag': True}
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size {batch_size!r} must be a positive int, e.g. 1 or 64")
    return _map_tensors(inputs, lambda t: _resize(t, batch_size))


def _resize(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    if tensor.dim() == 0:
        return tensor
    rows = int(tensor.shape[0])
    if rows == 0:
        raise ConfigError("example inputs have an empty batch (0 rows); pass at least one row")
    if rows >= batch_size:
        return tensor[:batch_size].contiguous()
    index = torch.arange(batch_size, device=tensor.device) % rows
    return tensor[index].contiguous()


def finite_metric(
    fn: Callable[[nn.Module], Any], model: nn.Module, where: str, *, name: str = "metric"
) -> float:
    """``fn(model)`` as a finite float; anything else is a ConfigError saying ``where``."""
    value = fn(model)
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{name} returned {value!r} {where}; it must return one number (higher is better)"
        ) from exc
    if not math.isfinite(out):
        raise ConfigError(f"{name} returned {out} {where}; it must return a finite number")
    return out
