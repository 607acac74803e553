"""Your own architecture, pruned by prunekit without edits: a recipe points at ``build``.

    model:
      name: python:../my_model.py:build     # path relative to the recipe file
      kwargs: {width: 24}

prunekit calls ``build`` with whichever of ``num_classes`` and ``input_shape`` it accepts,
plus the recipe's ``kwargs``, and expects an ``nn.Module`` back.
"""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """Conv-BN-ReLU twice, with a residual connection."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class SmallResNet(nn.Module):
    """A stem, two residual blocks with a pooling step between, global pooling and a head."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.block1 = Block(width)
        self.pool = nn.MaxPool2d(2)
        self.block2 = Block(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.pool(self.block1(self.stem(x))))
        return self.head(x.mean(dim=(2, 3)))


def build(num_classes: int, input_shape: tuple[int, ...], width: int = 16) -> nn.Module:
    """The factory the recipe names: the model for ``input_shape`` = (C, H, W)."""
    return SmallResNet(input_shape[0], num_classes, width=width)
