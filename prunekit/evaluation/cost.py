"""Model cost: parameter count and multiply-accumulate operations (MACs).

MACs are counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which counts the
matrix-multiply and convolution family of ops (``mm``, ``addmm``, ``bmm``, ``convolution``,
scaled-dot-product attention, ...). One multiply-accumulate is two FLOPs, so
``MACs = FLOPs // 2``. Element-wise work (bias adds, normalisation, activations, pooling) is
not counted, which is the usual convention for reporting MACs of CNNs and transformers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from prunekit.graph.tracer import call_model

__all__ = ["CostReport", "count_macs", "count_params", "measure_cost"]


@dataclass(frozen=True)
class CostReport:
    """Static cost of a model on one input.

    Attributes:
        params: Number of unique parameter elements (tied weights count once).
        macs: Multiply-accumulate operations of one forward pass on the example inputs.

    Example:
        >>> report = CostReport(params=10, macs=40)
        >>> report.to_dict()
        {'params': 10, 'macs': 40}
    """

    params: int
    macs: int

    def to_dict(self) -> dict[str, int]:
        """Return the report as a plain, JSON-serialisable ``dict``."""
        return asdict(self)


def count_params(model: nn.Module) -> int:
    """Count the parameter elements of ``model``, each shared tensor once.

    Parameters that are the same object (tied weights, e.g. an embedding shared with the output
    head) are counted once, as ``model.parameters()`` deduplicates them. Buffers (BatchNorm running
    statistics) are not parameters and are not counted.

    Args:
        model: Any ``nn.Module``.

    Returns:
        The total number of elements over all unique parameters.

    Example:
        >>> from torch import nn
        >>> count_params(nn.Linear(4, 3))  # 4*3 weights + 3 biases
        15
        >>> emb = nn.Embedding(10, 4)
        >>> head = nn.Linear(4, 10, bias=False)
        >>> head.weight = emb.weight  # tied
        >>> count_params(nn.ModuleList([emb, head]))
        40
    """
    # ``parameters()`` yields each Parameter object once, so tied weights count once.
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, example_inputs: Any) -> int:
    """Count the multiply-accumulate operations of one forward pass.

    The model runs once in eval mode with autograd enabled, so fused inference fast paths
    (which the counter cannot see into) are not taken; every submodule's training flag is
    restored afterwards, also when the forward pass raises.

    Args:
        model: The model to measure.
        example_inputs: A ``Tensor`` (called as ``model(x)``), a tuple or list of positional
            inputs (``model(*x)``) or a dict of keyword inputs (``model(**x)``).

    Returns:
        MACs of the forward pass, i.e. the counted FLOPs divided by two. Bias adds, norms and
        activations are not counted.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> count_macs(nn.Linear(4, 3), torch.zeros(2, 4))  # batch 2 x 4 in x 3 out
        24
        >>> conv = nn.Conv2d(2, 4, kernel_size=3, padding=1)
        >>> count_macs(conv, torch.zeros(1, 2, 5, 5))  # 4 out * 25 pixels * 2 in * 9 taps
        1800
    """
    training = {name: m.training for name, m in model.named_modules()}
    model.eval()
    try:
        with torch.enable_grad(), FlopCounterMode(display=False) as counter:
            call_model(model, example_inputs)
        flops = int(counter.get_total_flops())
    finally:
        for name, m in model.named_modules():
            if name in training:
                m.train(training[name])
    return flops // 2


def measure_cost(model: nn.Module, example_inputs: Any) -> CostReport:
    """Measure parameters and MACs together.

    Args:
        model: The model to measure.
        example_inputs: As for :func:`count_macs`.

    Returns:
        A :class:`CostReport`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> measure_cost(nn.Linear(4, 3), torch.zeros(1, 4))
        CostReport(params=15, macs=12)
    """
    return CostReport(params=count_params(model), macs=count_macs(model, example_inputs))
