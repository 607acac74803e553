"""Tiny reference networks for the conformance battery, each with inputs and labelled batches.

Every builder returns a :class:`ReferenceNet`: a seeded model in eval mode, example inputs
and calibration batches ``(inputs, labels)`` for a 3-class cross-entropy. The four criterion
nets cover the group shapes criteria meet (plain rows/columns, conv filters with a batch
norm, a residual stream, attention heads); the handler examples add one small model per
built-in layer family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["ReferenceNet", "CLASSES", "criterion_nets", "loss_fn"]

CLASSES = 3
"""Output classes of every reference net."""


@dataclass
class ReferenceNet:
    """A reference model, its example inputs and its calibration batches."""

    name: str
    model: nn.Module
    example_inputs: Any
    batches: list[tuple[Any, torch.Tensor]]


def loss_fn(output: Any, batch: Any) -> torch.Tensor:
    """Cross-entropy of a reference net's ``[batch, CLASSES]`` output against ``batch[1]``."""
    return nn.functional.cross_entropy(output, batch[1])


class Residual(nn.Module):
    """``x -> fc1 -> relu -> (fc2 -> relu) + skip -> head``: one residual stream."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, width), nn.Linear(width, width)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        y: torch.Tensor = self.head(torch.relu(self.fc2(h)) + h)
        return y


class Attention(nn.Module):
    """Self-attention over a sequence, mean-pooled, then a linear head."""

    def __init__(self, embed: int = 8, heads: int = 2, **mha: Any) -> None:
        super().__init__()
        self.inp = nn.Linear(4, embed)
        self.attn = nn.MultiheadAttention(embed, heads, batch_first=True, **mha)
        self.head = nn.Linear(embed, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        out, _ = self.attn(h, h, h, need_weights=False)
        y: torch.Tensor = self.head(out.mean(1))
        return y


class Recurrent(nn.Module):
    """A recurrent layer over a sequence, its last step fed to a linear head."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.rnn = rnn
        width = rnn.proj_size or rnn.hidden_size
        self.head = nn.Linear(width * (2 if rnn.bidirectional else 1), CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        y: torch.Tensor = self.head(out[:, -1])
        return y


class Pooled(nn.Module):
    """``body`` then a global mean over every dim after the channels, then a linear head."""

    def __init__(self, body: nn.Module, channels: int) -> None:
        super().__init__()
        self.body, self.head = body, nn.Linear(channels, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        y: torch.Tensor = self.head(h.flatten(2).mean(2) if h.dim() > 2 else h)
        return y


class Tokens(nn.Module):
    """An embedding (or embedding bag) of token ids, then a linear head on the mean."""

    def __init__(self, embed: nn.Module, width: int) -> None:
        super().__init__()
        self.embed, self.head = embed, nn.Linear(width, CLASSES)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids)
        y: torch.Tensor = self.head(h.mean(1) if h.dim() == 3 else h)
        return y


def build(
    name: str, make: Callable[[], nn.Module], shape: tuple[int, ...], *, seed: int = 0,
    tokens: int = 0,
) -> ReferenceNet:  # fmt: skip
    """Build ``make()`` under ``seed`` in eval mode, with float inputs of ``shape`` (or token
    ids below ``tokens`` when it is positive) and two labelled batches of 6 samples."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = make().eval()

    def inputs(n: int) -> torch.Tensor:
        if tokens:
            return torch.randint(0, tokens, (n, *shape), generator=gen)
        return torch.randn(n, *shape, generator=gen)

    batches = [(inputs(6), torch.randint(0, CLASSES, (6,), generator=gen)) for _ in range(2)]
    return ReferenceNet(name, model, inputs(2), batches)


def mlp() -> ReferenceNet:
    return build("mlp", lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6),
                                              nn.ReLU(), nn.Linear(6, CLASSES)), (4,))  # fmt: skip


def conv_bn() -> ReferenceNet:
    body = lambda: nn.Sequential(  # noqa: E731
        nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 5, 3), nn.BatchNorm2d(5), nn.ReLU(),
    )  # fmt: skip
    return build("conv_bn", lambda: Pooled(body(), 5), (2, 6, 6))


def residual() -> ReferenceNet:
    return build("residual", Residual, (4,))


def attention() -> ReferenceNet:
    return build("attention", Attention, (5, 4))


def criterion_nets() -> list[ReferenceNet]:
    """The four nets every criterion is checked on: MLP, conv + BN, residual, attention.

    Example:
        >>> [n.name for n in criterion_nets()]
        ['mlp', 'conv_bn', 'residual', 'attention']
    """
    return [mlp(), conv_bn(), residual(), attention()]
