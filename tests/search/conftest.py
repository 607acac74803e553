"""Shared fixtures for the search tests: a small BN MLP trained on sklearn's digits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from prunekit.data import load_digits


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models train far faster on one thread, especially on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class Digits:
    """Flattened digits: 1437 training and 360 validation images of 64 pixels."""

    xt: torch.Tensor
    yt: torch.Tensor
    xv: torch.Tensor
    yv: torch.Tensor

    def accuracy(self, model: nn.Module) -> float:
        with torch.no_grad():
            return float((model(self.xv).argmax(1) == self.yv).float().mean())

    def fit(self, model: nn.Module, epochs: int = 1, lr: float = 0.01) -> nn.Module:
        """SGD with momentum, batch 64, shuffled by the global torch generator."""
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(self.xt))
            for i in range(0, len(self.xt), 64):
                idx = perm[i : i + 64]
                opt.zero_grad()
                nn.functional.cross_entropy(model(self.xt[idx]), self.yt[idx]).backward()
                opt.step()
        return model.eval()

    def calibrate(self, model: nn.Module) -> None:
        """BatchNorm recalibration: cumulative statistics over 512 training images."""
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        model.train()
        with torch.no_grad():
            for i in range(0, 512, 128):
                model(self.xt[i : i + 128])
        model.eval()


def make_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
        nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
        nn.Linear(32, 10),
    )  # fmt: skip


@pytest.fixture(scope="session")
def digits() -> Digits:
    train, val = load_digits(seed=0)
    (xt, yt), (xv, yv) = train.tensors, val.tensors
    return Digits(xt.flatten(1), yt, xv.flatten(1), yv)


@pytest.fixture(scope="session")
def trained(digits: Digits) -> nn.Module:
    """The MLP after 5 epochs (about 97% validation accuracy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = digits.fit(make_mlp(), epochs=5, lr=0.05)
    finally:
        torch.set_num_threads(before)
    return model


@pytest.fixture
def recover(digits: Digits) -> Callable[[nn.Module], nn.Module]:
    """One quick fine-tuning epoch."""
    return lambda m: digits.fit(m, epochs=1, lr=0.01)
