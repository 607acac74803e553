"""Noise injection: Gaussian noise added to the weights after each step, decaying to zero.

Perturbing the weights while fine-tuning a pruned network pushes it out of sharp minima
(a form of the annealed weight noise of An 1996 / Neelakantan et al. 2015); the noise decays
to zero by the end of training, so the last steps refine the final weights undisturbed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["NoiseInjection"]

_DECAYS = ("linear", "cosine", "exponential")
_EXP_RATE = 5.0  # exponential decay: exp(-5 t), shifted and scaled to reach 0 at t = 1


@dataclass
class NoiseInjection:
    """Add ``N(0, sigma^2)`` noise to every trainable parameter after each optimizer step.

    ``sigma = scale * decay(t) * std(W)`` when ``relative`` (each tensor's own standard
    deviation; the absolute value for a single-element tensor), ``scale * decay(t)`` otherwise,
    with ``t`` the training progress in ``[0, 1]`` and ``decay`` falling from 1 to 0:

    - ``"linear"``: ``1 - t``
    - ``"cosine"``: ``0.5 * (1 + cos(pi * t))``
    - ``"exponential"``: ``(exp(-5 t) - exp(-5)) / (1 - exp(-5))``

    Noise comes from a generator seeded by the fine-tuning seed, so every process of a
    distributed run draws the same noise and the replicas stay identical.

    Args:
        scale: noise level at the start (relative to each tensor's std when ``relative``).
        decay: how the level falls to 0 over training.
        relative: scale the noise by each tensor's standard deviation.

    Example:
        >>> import torch
        >>> noise = NoiseInjection(scale=0.1, decay="cosine")
        >>> noise.factor(0.0), noise.factor(0.5), noise.factor(1.0)
        (1.0, 0.5, 0.0)
        >>> net = torch.nn.Linear(4, 4)
        >>> before = net.weight.detach().clone()
        >>> noise.apply(net, 0.0, torch.Generator().manual_seed(0))
        >>> bool((net.weight != before).all())
        True
    """

    scale: float = 0.01
    decay: str = "linear"
    relative: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)):
            raise ConfigError(f"NoiseInjection scale={self.scale!r} must be a number, e.g. 0.01")
        if self.scale < 0 or not math.isfinite(self.scale):
            raise ConfigError(f"NoiseInjection scale={self.scale!r} must be finite and >= 0")
        if self.decay not in _DECAYS:
            raise ConfigError(
                f"NoiseInjection decay={self.decay!r} is unknown; use one of {_DECAYS}"
            )

    def factor(self, progress: float) -> float:
        """The decay multiplier at ``progress`` in ``[0, 1]`` (1 at the start, 0 at the end)."""
        t = min(max(float(progress), 0.0), 1.0)
        if self.decay == "linear":
            return 1.0 - t
        if self.decay == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        floor = math.exp(-_EXP_RATE)
        return (math.exp(-_EXP_RATE * t) - floor) / (1.0 - floor)

    @torch.no_grad()
    def apply(self, model: nn.Module, progress: float, generator: torch.Generator) -> None:
        """Add this step's noise to ``model``'s trainable parameters, in place.

        ``generator`` is a CPU generator; noise is drawn on the CPU and moved to each
        parameter's device, so it is the same on every device and process.
        """
        level = self.scale * self.factor(progress)
        if level == 0.0:
            return
        for p in model.parameters():
            if not p.requires_grad or p.numel() == 0:
                continue
            sigma = level
            if self.relative:
                ref = p.detach().float()
                sigma *= float(ref.std()) if p.numel() > 1 else float(ref.abs().reshape(()))
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float32)
            p.add_(noise.to(device=p.device, dtype=p.dtype), alpha=sigma)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return asdict(self)
