"""Shared pieces of the architecture zoo: the ``ZooCase`` record and init helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class ZooCase:
    """One zoo architecture, ready to run.

    ``example_inputs`` is a Tensor (call ``model(x)``), a tuple of tensors (call
    ``model(*x)``) or a dict of keyword inputs (call ``model(**x)``); ``call_model``
    does the dispatch. ``kind`` is one of ``"mlp"``, ``"cnn"``, ``"seq"`` (recurrent
    or embedding language models without attention) and ``"transformer"``.
    """

    model: nn.Module
    example_inputs: Any
    kind: str

    def run(self, model: nn.Module | None = None) -> Any:
        """Run ``model`` (default: this case's model) on this case's example inputs."""
        return call_model(self.model if model is None else model, self.example_inputs)


def call_model(model: nn.Module, inputs: Any) -> Any:
    """Call ``model`` on ``inputs`` given as a Tensor, a tuple/list, or a dict of kwargs."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_AFFINE_NORMS = (nn.LayerNorm, nn.GroupNorm)


@torch.no_grad()
def randomize_norms(model: nn.Module) -> nn.Module:
    """Give every norm layer non-trivial statistics and affine parameters.

    BatchNorm: running_mean ~ N(0, .1), running_var ~ U(.5, 1.5), weight ~ U(.5, 1.5),
    bias ~ N(0, .1); LayerNorm/GroupNorm: the same for weight and bias. Eval-mode
    norms are then not the identity, which makes equivalence tests meaningful.
    Uses the global RNG, so it is deterministic under the factory's seed.
    """
    for module in model.modules():
        if isinstance(module, _BATCH_NORMS):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
        if isinstance(module, _BATCH_NORMS + _AFFINE_NORMS):
            if module.weight is not None:
                module.weight.uniform_(0.5, 1.5)
            if module.bias is not None:
                module.bias.normal_(0.0, 0.1)
    return model


BATCH = 2
