"""Refit geometry: how a layer is affine in its unfolded input (what a handler's
``refit_geometry`` returns), for least-squares compensation after a cut.

A Linear layer is ``Y = X W^T + b`` on its input rows; a convolution is the same on its
im2col patches, with ``W`` the weight flattened to ``[out, in * kernel elements]`` (a Conv1d
is unfolded as a Conv2d of height 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RefitGeometry", "conv_geometry", "linear_geometry"]


@dataclass(frozen=True)
class RefitGeometry:
    """``layer(x)`` at output unit u is ``rows(x) @ W_u + b_u``, with ``W`` the layer's weight
    flattened to ``[out, d]`` (dim 0 holds the output units).

    Attributes:
        rows: ``x -> [n, d]``: the design rows of an input (one per output position).
        unit_dim: the dim of the layer's output that holds its units (``-1`` for Linear,
            ``1`` for convolutions).
        settings: what must be equal in the original layer for the refit to reproduce it
            (name -> value: kernel size, stride ...).

    Example:
        >>> import torch
        >>> fc = torch.nn.Linear(3, 2)
        >>> geo = linear_geometry()
        >>> x = torch.randn(4, 3)
        >>> y = geo.rows(x) @ fc.weight.T + fc.bias
        >>> torch.allclose(y, geo.targets(fc(x), [0, 1]))
        True
    """

    rows: Callable[[torch.Tensor], torch.Tensor]
    unit_dim: int
    settings: dict[str, Any] = field(default_factory=dict)

    def targets(self, y: torch.Tensor, kept: Sequence[int]) -> torch.Tensor:
        """The outputs ``y`` at the ``kept`` units, one row per position (as :attr:`rows`)."""
        idx = torch.as_tensor(list(kept), dtype=torch.long, device=y.device)
        picked = y.index_select(self.unit_dim, idx).movedim(self.unit_dim, -1)
        return picked.reshape(-1, len(idx))

    def differences(self, other: RefitGeometry) -> list[str]:
        """The names of the settings that differ from ``other``'s."""
        names = dict.fromkeys([*self.settings, *other.settings])
        return [n for n in names if self.settings.get(n) != other.settings.get(n)]


def linear_geometry() -> RefitGeometry:
    """The geometry of a Linear layer: the input's last dim is the feature dim."""
    return RefitGeometry(rows=lambda x: x.reshape(-1, x.shape[-1]), unit_dim=-1)


def conv_geometry(conv: nn.Conv1d | nn.Conv2d) -> RefitGeometry | str:
    """The geometry of a 1-D or 2-D convolution, or why it cannot be refit."""
    if conv.groups != 1:
        return "grouped convolution (groups > 1)"
    if conv.padding_mode != "zeros":
        return f"padding_mode={conv.padding_mode!r} (only 'zeros')"
    settings = {
        name.replace("_", " "): getattr(conv, name)
        for name in ("kernel_size", "stride", "padding", "dilation")
    }

    def rows(x: torch.Tensor) -> torch.Tensor:
        cols = _unfold(conv, x)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])

    return RefitGeometry(rows=rows, unit_dim=1, settings=settings)


def _conv_input(
    conv: nn.Conv1d | nn.Conv2d, x: torch.Tensor
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``x`` padded as the convolution pads it, and the padding left for ``unfold``."""
    dims = len(conv.kernel_size)
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return x, (0,) * dims
        pads: list[int] = []
        for d, k in zip(reversed(conv.dilation), reversed(conv.kernel_size)):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads), (0,) * dims
    return x, tuple(int(p) for p in conv.padding)


def _unfold(conv: nn.Conv1d | nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """im2col patches ``[N, in * kernel elements, positions]`` (Conv1d: as height 1)."""
    x, padding = _conv_input(conv, x)
    kernel, dilation, stride = tuple(conv.kernel_size), tuple(conv.dilation), tuple(conv.stride)
    if len(kernel) == 1:  # a Conv1d: a Conv2d of height 1
        x = x.unsqueeze(-2)
        kernel, dilation, stride = (1, kernel[0]), (1, dilation[0]), (1, stride[0])
        padding = (0, padding[0])
    return F.unfold(x, kernel, dilation, padding, stride)
