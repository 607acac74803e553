"""Calibration activations of a decoder LLM, one block at a time, and their running sums.

Every block-wise method of :mod:`prunekit.llm` (structured cuts, weight sparsity, depth
pruning) walks the decoder the same way (FLAP / SparseGPT order):

1. :func:`capture_block_inputs` runs the calibration windows through the embedding only and
   keeps the inputs of decoder block 0 (hidden states and the keywords the block is called
   with: rotary embeddings, mask); the rest of the model is not run;
2. for each block in order, the method hooks the layers it needs while
   :func:`run_block` passes the held inputs through the block, changes the block, and
   :func:`run_block` on the *changed* block produces the next block's inputs.

Only one block's hidden states are held. Statistics are running sums in float64:
:class:`GramStats` keeps ``X^T X`` of a layer's inputs (the Hessian of the layer-wise
least-squares problem used by SparseGPT and least-squares compensation).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from ..errors import DataError

__all__ = ["CALIBRATION_BATCH", "Chunk", "GramStats", "capture_block_inputs", "run_block"]

Chunk = tuple[torch.Tensor, dict[str, Any]]
"""One calibration batch at a block's input: hidden states ``(B, L, H)`` and call keywords."""

CALIBRATION_BATCH = 4
"""Calibration windows per forward pass (the transient attention scores grow with it)."""


class _Stop(Exception):
    """Raised by the capture hook once block 0's inputs are known."""


def capture_block_inputs(
    model: nn.Module, first: nn.Module, ids: torch.Tensor, *, batch: int = CALIBRATION_BATCH
) -> list[Chunk]:
    """Inputs of the decoder block ``first`` for the ``(N, L)`` token ids ``ids``, in
    batches of ``batch`` windows; the model stops at that block (nothing after it runs)."""
    chunks: list[Chunk] = []

    def hook(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        kw = dict(kwargs)
        hidden = args[0] if args else kw.pop("hidden_states")
        for key in ("cache", "past_key_values", "past_key_value"):
            kw.pop(key, None)
        kw["use_cache"] = False
        chunks.append((hidden.detach(), kw))
        raise _Stop

    handle = first.register_forward_pre_hook(hook, with_kwargs=True)
    device = next(model.parameters()).device
    try:
        for start in range(0, ids.shape[0], batch):
            with contextlib.suppress(_Stop):
                model(input_ids=ids[start : start + batch].to(device), use_cache=False)
    finally:
        handle.remove()
    return chunks


def run_block(block: nn.Module, chunks: list[Chunk]) -> list[Chunk]:
    """``block`` applied to every held chunk: the next block's inputs (same keywords)."""
    out = []
    for hidden, kw in chunks:
        y = block(hidden, **kw)
        out.append(((y[0] if isinstance(y, tuple) else y).detach(), kw))
    return out


class GramStats:
    """Running ``X^T X`` (float64) and token count of a layer's ``(..., features)`` inputs.

    Args:
        features: Size of the last input dimension.

    Example:
        >>> g = GramStats(2)
        >>> g.add(torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
        >>> g.count, g.gram.tolist()
        (2, [[10.0, 2.0], [2.0, 4.0]])
    """

    def __init__(self, features: int) -> None:
        self.count = 0
        self.gram = torch.zeros(features, features, dtype=torch.float64)

    def add(self, x: torch.Tensor) -> None:
        """Accumulate every token (all leading dims) of ``x``."""
        if x.shape[-1] != self.gram.shape[0]:
            raise DataError(
                f"GramStats.add: inputs have {x.shape[-1]} features, the statistics "
                f"{self.gram.shape[0]}; one GramStats per layer input"
            )
        flat = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)
        self.count += flat.shape[0]
        self.gram += (flat.T @ flat).cpu()

    def hessian(self, *, damp: float = 0.01) -> torch.Tensor:
        """``2/n X^T X + damp * mean(diag) * I`` (SparseGPT's damped layer Hessian)."""
        if self.count == 0:
            raise DataError("GramStats: no tokens were accumulated; run calibration first")
        h = self.gram * (2.0 / self.count)
        h.diagonal().add_(damp * h.diagonal().mean().clamp_min(1e-12))
        return h
