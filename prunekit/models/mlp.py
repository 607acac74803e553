"""A plain multilayer perceptron for tabular data (and flattened images)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["MLP"]


class MLP(nn.Module):
    """Flatten, then ``Linear -> ReLU -> Dropout`` per hidden layer, then a linear classifier.

    Inputs of any shape ``(N, ...)`` are flattened to ``(N, in_features)``, so the same model
    takes tabular rows and images.

    Args:
        in_features: Number of input features (product of the per-sample shape).
        hidden: Width of each hidden layer, in order; empty for logistic regression.
        num_classes: Number of output logits.
        dropout: Dropout probability after each hidden activation (0 disables it).

    Attributes:
        features: The hidden layers (``nn.Sequential``).
        classifier: The output ``nn.Linear``.

    Example:
        >>> import torch
        >>> model = MLP(30, hidden=(16, 8), num_classes=2)
        >>> model(torch.zeros(4, 30)).shape
        torch.Size([4, 2])
        >>> MLP(64, hidden=(32,), num_classes=10)(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (256, 128),
        num_classes: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in hidden]
        if in_features < 1 or num_classes < 1 or any(w < 1 for w in widths):
            raise ConfigError(
                f"MLP: in_features, num_classes and every hidden width must be >= 1, got "
                f"in_features={in_features}, hidden={tuple(hidden)}, num_classes={num_classes}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"MLP: dropout must be in [0, 1), got {dropout!r}")
        self.in_features = in_features
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Flatten()]
        previous = in_features
        for width in widths:
            layers += [nn.Linear(previous, width), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            previous = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, ...)`` inputs to logits ``(N, num_classes)``."""
        out: torch.Tensor = self.classifier(self.features(x))
        return out
