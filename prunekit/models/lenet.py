"""LeNet-5 (LeCun et al. 1998) for 28x28 images, adapted so smaller images work too."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["LeNet5"]

_VALID_CONV2_MIN = 12  # smallest input for which the unpadded 5x5 conv2 leaves >= 2x2 to pool


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling: two 5x5 convs (6, 16 maps) and three linear layers.

    Layout for the default 28x28 input (the classic MNIST arrangement, ``padding=2`` on
    conv1 so 28x28 plays the role of the original 32x32)::

        conv1 C->6   5x5 pad 2  ReLU   28x28
        maxpool 2                      14x14
        conv2 6->16  5x5        ReLU   10x10
        maxpool 2                      5x5
        adaptive avg pool to 5x5       5x5   (identity at 28x28)
        fc1 400->120 ReLU, fc2 120->84 ReLU, fc3 84->num_classes

    How it adapts to other sizes: when ``input_size < 12`` conv2 is padded by 2 ("same"), so
    the two poolings still leave at least 1x1, and the adaptive average pool always hands
    fc1 a 16x5x5 map. For 8x8 digits: 8 -> 4 -> 4 -> 2, pooled up to 5x5 (each cell averages
    the input cells it overlaps), so fc1 keeps its 400 inputs. Any size >= 4 works.

    Args:
        num_classes: Number of output logits.
        in_channels: Image channels.
        input_size: Height/width of the input images (the smaller side if not square).

    Example:
        >>> import torch
        >>> LeNet5()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        >>> LeNet5(num_classes=3, input_size=8)(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 3])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, *, input_size: int = 28):
        super().__init__()
        if num_classes < 1 or in_channels < 1 or input_size < 4:
            raise ConfigError(
                f"LeNet5: need num_classes >= 1, in_channels >= 1 and input_size >= 4, got "
                f"{num_classes=}, {in_channels=}, {input_size=}"
            )
        self.num_classes = num_classes
        conv2_padding = 0 if input_size >= _VALID_CONV2_MIN else 2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5, padding=conv2_padding),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d((5, 5)),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(N, C, H, W)`` to logits ``(N, num_classes)``."""
        out: torch.Tensor = self.classifier(self.features(x))
        return out
