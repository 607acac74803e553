"""Shared, cached setup for the recovery tests: a small CNN trained on real digits."""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn

from prunekit.data import load_digits
from prunekit.models import DigitsCNN

Batches = list[tuple[torch.Tensor, torch.Tensor]]


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    train, val = load_digits(seed=0)
    return (*train.tensors, *val.tensors)  # type: ignore[return-value]


def digits_batches(
    batch_size: int = 64, *, split: str = "train", limit: int | None = None
) -> Batches:
    """The digits as a list of ``(x, y)`` batches (fixed order)."""
    tx, ty, vx, vy = _digits()
    x, y = (tx, ty) if split == "train" else (vx, vy)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


@functools.lru_cache(maxsize=2)
def _trained(width: int, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    tx, ty, _, _ = _digits()
    net = DigitsCNN(width=width)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(tx), generator=gen)
        for i in range(0, len(tx), 64):
            idx = order[i : i + 64]
            loss = F.cross_entropy(net(tx[idx]), ty[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def trained_cnn(width: int = 16, epochs: int = 5) -> nn.Module:
    """A fresh copy of a DigitsCNN trained with Adam on the digits (cached per width)."""
    return copy.deepcopy(_trained(width, epochs))
