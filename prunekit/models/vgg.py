"""A small VGG (Simonyan & Zisserman 2015) with BatchNorm, sized for 28x28 images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["VGG", "VGG11_SMALL"]

VGG11_SMALL: tuple[int | str, ...] = (32, "M", 64, "M", 128, 128, "M", 256, 256, 256, 256)
"""VGG-11's eight 3x3 convs at half width, with three poolings (28 -> 14 -> 7 -> 3)."""


class VGG(nn.Module):
    """VGG-style stack of ``conv3x3 -> BN -> ReLU`` layers and max pools, then a small MLP head.

    ``config`` lists conv widths and ``"M"`` for a 2x2 max pool. VGG-11 has five pools for
    224x224; :data:`VGG11_SMALL` keeps its eight convs (at half width) with three pools, so a
    28x28 input ends at 3x3. An adaptive average pool then reduces any remaining map to 1x1,
    so the head sees ``last_width`` features whatever the input size.

    Args:
        num_classes: Number of output logits.
        in_channels: Image channels.
        config: Conv widths and ``"M"`` markers.
        hidden: Width of the hidden classifier layer.
        dropout: Dropout before each classifier linear layer (0 disables it).

    Example:
        >>> import torch
        >>> model = VGG(num_classes=10, config=(8, "M", 16, "M", 32))
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        config: Sequence[int | str] = VGG11_SMALL,
        hidden: int = 256,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        widths = [c for c in config if c != "M"]
        if not widths or any(not isinstance(c, int) or c < 1 for c in widths):
            raise ConfigError(
                f"VGG: config must hold positive conv widths and 'M' markers, got {tuple(config)}"
            )
        if num_classes < 1 or in_channels < 1 or hidden < 1 or not 0.0 <= dropout < 1.0:
            raise ConfigError(
                f"VGG: need num_classes, in_channels, hidden >= 1 and dropout in [0, 1), got "
                f"{num_classes=}, {in_channels=}, {hidden=}, {dropout=}"
            )
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        previous = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            width = int(item)
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            previous = width
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(previous, hidden), nn.ReLU()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(hidden, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(N, C, H, W)`` to logits ``(N, num_classes)``."""
        out: torch.Tensor = self.classifier(self.features(x))
        return out
