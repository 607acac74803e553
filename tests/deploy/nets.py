"""Tiny hand-made models for the deploy tests: outputs fixed per row, inputs recorded."""

from __future__ import annotations

import math

import torch
from torch import nn


class Lookup(nn.Module):
    """Row ``i`` of the input (a float id in column 0) gets ``table[id]`` as its logits; every
    batch it sees is recorded in ``seen``. ``cost`` MACs per row are spent (and counted) on
    a ``Linear(1, cost)`` whose result is multiplied by zero."""

    def __init__(self, table: list[list[float]], cost: int = 0) -> None:
        super().__init__()
        self.register_buffer("table", torch.tensor(table, dtype=torch.float32))
        self.work = nn.Linear(1, cost, bias=False) if cost else None
        self.seen: list[list[int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x[:, 0].long()
        self.seen.append(ids.tolist())
        out = self.table[ids]
        if self.work is not None:
            out = out + 0.0 * self.work(x[:, :1]).sum(dim=1, keepdim=True)
        return out


def ids(n: int) -> torch.Tensor:
    """The inputs 0..n-1 as a (n, 1) float batch."""
    return torch.arange(n, dtype=torch.float32).unsqueeze(1)


def logits_with(prob: float, cls: int, classes: int = 2) -> list[float]:
    """Logits whose softmax gives ``prob`` to ``cls`` and shares the rest equally."""
    rest = (1.0 - prob) / (classes - 1)
    return [math.log(prob) if c == cls else math.log(rest) for c in range(classes)]


def first_three() -> nn.Linear:
    """Linear(4, 3) whose logits are the input's first three features (12 MACs per row)."""
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(3, 4))
        lin.bias.zero_()
    return lin


def mlp(seed: int = 0) -> nn.Sequential:
    """Linear(4, 16) -> ReLU -> Linear(16, 3): 64 + 48 = 112 MACs per row."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
