"""A small reference CNN for the 1x8x8 digits."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DigitsCNN"]


class DigitsCNN(nn.Module):
    """Small VGG-style CNN for 1x8x8 images: three conv-BN-ReLU blocks, pooling, a classifier.

    Layout (``w`` = ``width``)::

        conv1 1->w   3x3  BN ReLU      8x8
        conv2 w->2w  3x3  BN ReLU      8x8
        maxpool 2                      4x4
        conv3 2w->2w 3x3  BN ReLU      4x4
        global average pool            1x1
        fc   2w -> num_classes

    Args:
        width: Channels of the first conv; later blocks use ``2 * width``.
        num_classes: Number of output logits.

    Example:
        >>> import torch
        >>> model = DigitsCNN(width=8)
        >>> model(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        if width < 1 or num_classes < 1:
            raise ValueError(
                f"DigitsCNN: width and num_classes must be >= 1, got {width=} {num_classes=}"
            )
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(1, width, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(2 * width, 2 * width, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(2 * width)
        self.relu = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(N, 1, 8, 8)`` to logits ``(N, num_classes)``."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.pool(x)
        x = self.relu(self.bn3(self.conv3(x)))
        x = torch.flatten(self.gap(x), 1)
        out: torch.Tensor = self.fc(x)
        return out
