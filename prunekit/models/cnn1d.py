"""A 1-D convolutional classifier for MNIST-1D signals (1 x 40)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["CNN1D"]


class CNN1D(nn.Module):
    """Three ``conv1d -> BN -> ReLU`` blocks (pooling after the first two), flatten, two linears.

    Layout for the default 40-sample input and ``channels=(32, 64, 64)``::

        conv 1->32  k5 pad 2  BN ReLU  maxpool 2     40 -> 20
        conv 32->64 k3 pad 1  BN ReLU  maxpool 2     20 -> 10
        conv 64->64 k3 pad 1  BN ReLU                10
        flatten 64*10 -> fc hidden ReLU -> fc num_classes

    The classifier keeps the position of each feature (flatten, not global pooling), which
    matters on MNIST-1D, where digits differ by where their bumps sit.

    Args:
        num_classes: Number of output logits.
        in_channels: Signal channels.
        input_length: Samples per signal (>= 4).
        channels: Output channels of the three conv blocks.
        hidden: Width of the hidden linear layer.

    Example:
        >>> import torch
        >>> CNN1D()(torch.zeros(3, 1, 40)).shape
        torch.Size([3, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        input_length: int = 40,
        channels: Sequence[int] = (32, 64, 64),
        hidden: int = 128,
    ) -> None:
        super().__init__()
        widths = [int(c) for c in channels]
        if len(widths) != 3 or min(widths) < 1:
            raise ConfigError(f"CNN1D: channels must be three positive ints, got {tuple(channels)}")
        if num_classes < 1 or in_channels < 1 or hidden < 1 or input_length < 4:
            raise ConfigError(
                f"CNN1D: need num_classes, in_channels, hidden >= 1 and input_length >= 4, got "
                f"{num_classes=}, {in_channels=}, {hidden=}, {input_length=}"
            )
        self.num_classes = num_classes
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, c1, 5, padding=2, bias=False),
            nn.BatchNorm1d(c1),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm1d(c2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(c2, c3, 3, padding=1, bias=False),
            nn.BatchNorm1d(c3),
            nn.ReLU(),
        )
        length = input_length // 2 // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c3 * length, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map signals ``(N, C, L)`` to logits ``(N, num_classes)``."""
        out: torch.Tensor = self.classifier(self.features(x))
        return out
