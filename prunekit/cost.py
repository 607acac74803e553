"""Model cost: parameter count, multiply-accumulate operations (MACs) and bytes on disk.

Below the pruner (its budgets count params and MACs) and re-exported by
:mod:`prunekit.evaluation.cost` for reports.

MACs are counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which counts the
matrix-multiply and convolution family of ops (``mm``, ``addmm``, ``bmm``, ``convolution``,
scaled-dot-product attention, ...). One multiply-accumulate is two FLOPs, so
``MACs = FLOPs // 2``. Element-wise work (bias adds, normalisation, activations, pooling) is
not counted, which is the usual convention for reporting MACs of CNNs and transformers.

Bytes on disk are the exact length of the model's state dict serialised with safetensors
(header included; a tensor shared under several names is stored once), i.e. the size of the
file a pruned model ships as. ``fp32_bytes`` is the raw payload with every floating-point
tensor counted as float32, a dtype-independent size to compare models by.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from safetensors.torch import save as safetensors_save
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ._modelio import call_model, eval_mode

__all__ = [
    "CostReport",
    "count_macs",
    "count_params",
    "fp32_bytes",
    "measure_cost",
    "state_dict_bytes",
    "unique_state",
]


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
    with eval_mode(model), torch.enable_grad(), FlopCounterMode(display=False) as counter:
        call_model(model, example_inputs)
    return int(counter.get_total_flops()) // 2


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


def unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with each shared tensor once, as independent contiguous CPU tensors.

    Entries that are the same tensor under several names (tied weights) keep their first
    name; distinct views into one storage are copied apart, so the result can be serialised.

    Example:
        >>> from torch import nn
        >>> emb = nn.Embedding(10, 4)
        >>> head = nn.Linear(4, 10, bias=False)
        >>> head.weight = emb.weight  # tied
        >>> list(unique_state(nn.ModuleList([emb, head])))
        ['0.weight']
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[Any, ...]] = set()
    storages: set[int] = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        tensor = tensor.detach()
        key = (tensor.device, tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.stride())
        if key in seen:
            continue
        seen.add(key)
        storage = tensor.untyped_storage().data_ptr()
        tensor = tensor.cpu().contiguous()
        if storage in storages and tensor.numel():
            tensor = tensor.clone()
        storages.add(storage)
        out[name] = tensor
    return out


def state_dict_bytes(model: nn.Module) -> int:
    """Size in bytes of the model's weights serialised with safetensors (what ships on disk).

    Equal to the size of the file ``safetensors.torch.save_model(model, path)`` writes for a
    model without tied weights (for tied ones, ``save_model`` adds a small metadata entry).

    Example:
        >>> from torch import nn
        >>> size = state_dict_bytes(nn.Linear(4, 3))
        >>> size > 15 * 4  # 15 float32 values plus the JSON header
        True
    """
    return len(safetensors_save(unique_state(model)))


def fp32_bytes(model: nn.Module) -> int:
    """Raw payload bytes with floating-point tensors counted as float32 (others as stored).

    Example:
        >>> from torch import nn
        >>> fp32_bytes(nn.Linear(4, 3).half())  # 15 values, counted at 4 bytes each
        60
        >>> fp32_bytes(nn.BatchNorm1d(2))  # 8 floats (weight, bias, mean, var) + an int64 counter
        40
    """
    total = 0
    for tensor in unique_state(model).values():
        size = 4 if tensor.is_floating_point() else tensor.element_size()
        total += tensor.numel() * size
    return total
