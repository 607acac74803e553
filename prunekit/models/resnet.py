"""CIFAR-style ResNets (He et al. 2016, section 4.2): ResNet-20 and ResNet-56.

Three stages of ``n`` BasicBlocks each, with 16, 32 and 64 channels (configurable), strides
1, 2, 2, depth ``6n + 2``. Shortcuts that change shape use a 1x1 convolution and BatchNorm
("option B"), which keeps the residual adds prunable: the shortcut conv's output channels
join the block's output channels in one group. Works for any input channel count and any
image size >= 4 (28x28 gives 28 -> 14 -> 7 feature maps; global average pooling follows).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["BasicBlock", "ResNet", "ResNet20", "ResNet56"]


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection: ``relu(bn2(conv2(h)) + shortcut(x))``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the first conv (and of the projection shortcut).

    Example:
        >>> import torch
        >>> block = BasicBlock(16, 32, stride=2)
        >>> block(torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        out: torch.Tensor = self.relu(h + self.shortcut(x))
        return out


class ResNet(nn.Module):
    """CIFAR-style ResNet of depth ``6n + 2``: stem conv, three stages of BasicBlocks, GAP, fc.

    Args:
        depth: Total weighted layers, ``6n + 2`` (20, 32, 44, 56, 110 ...).
        num_classes: Number of output logits.
        in_channels: Image channels (1 for MNIST-like sets, 3 for RGB).
        widths: Channels of the three stages.

    Example:
        >>> import torch
        >>> model = ResNet(8, num_classes=5, in_channels=1, widths=(4, 8, 16))
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        in_channels: int = 3,
        *,
        widths: Sequence[int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(
                f"ResNet: depth must be 6n + 2 with n >= 1 (8, 14, 20, 56 ...), got {depth}"
            )
        stage_widths = [int(w) for w in widths]
        if len(stage_widths) != 3 or min(stage_widths) < 1:
            raise ConfigError(f"ResNet: widths must be three positive ints, got {tuple(widths)}")
        if num_classes < 1 or in_channels < 1:
            raise ConfigError(
                f"ResNet: num_classes and in_channels must be >= 1, got {num_classes=}, "
                f"{in_channels=}"
            )
        blocks_per_stage = (depth - 2) // 6
        self.depth = depth
        self.num_classes = num_classes
        self.conv1 = _conv3x3(in_channels, stage_widths[0])
        self.bn1 = nn.BatchNorm2d(stage_widths[0])
        self.relu = nn.ReLU()
        previous = stage_widths[0]
        stages = []
        for index, width in enumerate(stage_widths):
            blocks = []
            for b in range(blocks_per_stage):
                stride = 2 if index > 0 and b == 0 else 1
                blocks.append(BasicBlock(previous, width, stride))
                previous = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(previous, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(N, C, H, W)`` to logits ``(N, num_classes)``."""
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        h = torch.flatten(self.pool(h), 1)
        out: torch.Tensor = self.fc(h)
        return out


class ResNet20(ResNet):
    """ResNet-20 (3 blocks per stage, about 0.27 M parameters at the default widths).

    Args:
        num_classes: Number of output logits.
        in_channels: Image channels.
        widths: Channels of the three stages.

    Example:
        >>> import torch
        >>> ResNet20(num_classes=10, in_channels=1)(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, *, widths: Sequence[int] = (16, 32, 64)
    ) -> None:
        super().__init__(20, num_classes, in_channels, widths=widths)


class ResNet56(ResNet):
    """ResNet-56 (9 blocks per stage, about 0.86 M parameters at the default widths).

    Args:
        num_classes: Number of output logits.
        in_channels: Image channels.
        widths: Channels of the three stages.

    Example:
        >>> import torch
        >>> ResNet56(num_classes=10, in_channels=1)(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, *, widths: Sequence[int] = (16, 32, 64)
    ) -> None:
        super().__init__(56, num_classes, in_channels, widths=widths)
