"""The running statistics a layer normalises with at inference (what a handler's
``running_stats`` returns), as used by BatchNorm re-estimation and inheritance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

__all__ = ["RunningStats"]


class RunningStats:
    """A handle on one layer's running statistics.

    The base class follows PyTorch's batch norms: per-channel buffers (dim 0 is the
    channel) named by ``buffers``, reset by the module's ``reset_running_stats()``, and
    updated in train mode as an exponential average with factor ``module.momentum``
    (``None``: a cumulative average). A layer with other mechanics returns a subclass from
    its handler's :meth:`~prunekit.surgery.Handler.running_stats`.

    Example:
        >>> import torch
        >>> stats = RunningStats(torch.nn.BatchNorm1d(3))
        >>> stats.channels, sorted(stats.tensors()), stats.momentum
        (3, ['running_mean', 'running_var'], 0.1)
    """

    def __init__(
        self, module: nn.Module, buffers: Sequence[str] = ("running_mean", "running_var")
    ) -> None:
        self.module = module
        self.buffers = tuple(buffers)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Buffer name -> the statistic (``[channels]``), the module's own tensors."""
        return {name: cast(torch.Tensor, getattr(self.module, name)) for name in self.buffers}

    @property
    def channels(self) -> int:
        """The number of channels the statistics cover."""
        return int(next(iter(self.tensors().values())).shape[0])

    def reset(self) -> None:
        """Reset the statistics to their initial values (mean 0, variance 1, count 0)."""
        cast(Any, self.module).reset_running_stats()

    @property
    def momentum(self) -> float | None:
        """The update factor of the running average (``None``: cumulative)."""
        return cast("float | None", getattr(self.module, "momentum", None))

    @momentum.setter
    def momentum(self, value: float | None) -> None:
        cast(Any, self.module).momentum = value
