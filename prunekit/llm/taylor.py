"""First-order Taylor scores of LLM units on the calibration loss (LLM-Pruner, 2023),
memory-bounded.

The loss is next-token cross-entropy on the calibration windows (``model(input_ids=ids,
labels=ids).loss``), run in micro-batches of ``micro_batch`` windows. Only the projection
weights of the decoder blocks take gradients (embeddings, norms and the LM head are frozen
for the pass), and every weight carries a post-accumulate-grad hook that folds
``|w * dL/dw|`` into per-unit sums as soon as its gradient exists and frees the gradient:
no gradient outlives its own hook, so the extra memory is one weight's gradient plus the
activations of one micro-batch. Per block the unit scores are

* query head ``h``: the sum of ``|w * g|`` over rows ``h*d:(h+1)*d`` of ``q_proj`` and the
  same columns of ``o_proj``;
* KV group ``g``: the sum over rows ``g*d:(g+1)*d`` of ``k_proj`` and ``v_proj``
  (``"kv"``; a whole group's score adds its query heads' scores);
* FFN neuron ``j``: row ``j`` of ``gate_proj`` and ``up_proj`` and column ``j`` of ``down_proj``.

The absolute value is taken per micro-batch (so the score is ``sum_b sum_w |w g_b|``; with
one window per micro-batch, the per-sequence first-order estimate of the loss change).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import ConfigError
from ..surgery.llama_blocks import BlockLayout, decoder_layers, projections

__all__ = ["taylor_scores"]

# projection -> (unit kind, the weight dim that indexes the unit)
_UNITS = {
    "q_proj": ("heads", 0),
    "o_proj": ("heads", 1),
    "k_proj": ("kv", 0),
    "v_proj": ("kv", 0),
    "gate_proj": ("ffn", 0),
    "up_proj": ("ffn", 0),
    "down_proj": ("ffn", 1),
}


def _folder(sums: torch.Tensor, dim: int) -> Callable[[torch.Tensor], None]:
    units = sums.numel()

    def hook(p: torch.Tensor) -> None:
        if p.grad is None:
            return
        prod = (p.detach().float() * p.grad.float()).abs()
        per = prod.sum(1 - dim)  # one value per row (dim 0) or column (dim 1)
        sums.add_(per.reshape(units, -1).sum(1).double().cpu())
        p.grad = None

    return hook


def taylor_scores(
    model: nn.Module, calibration: torch.Tensor, *, micro_batch: int = 1
) -> list[dict[str, torch.Tensor]]:
    """Per decoder block, ``{"heads": (num_heads,), "kv": (num_kv_heads,), "ffn":
    (intermediate,)}`` float64 Taylor scores (module docstring); higher = keep.

    Args:
        model: A Llama-layout causal LM (``model(input_ids=..., labels=...)``).
        calibration: ``(N, L)`` int token ids.
        micro_batch: Windows per forward/backward pass (memory grows with it).

    Raises:
        ConfigError: If ``micro_batch`` is not a positive int or ``calibration`` is not 2-D.
    """
    if isinstance(micro_batch, bool) or not isinstance(micro_batch, int) or micro_batch < 1:
        raise ConfigError(f"taylor_scores: micro_batch must be a positive int, got {micro_batch!r}")
    if not isinstance(calibration, torch.Tensor) or calibration.dim() != 2:
        raise ConfigError("taylor_scores: calibration must be an (N, L) tensor of token ids")
    layers = decoder_layers(model)
    flags = {id(p): p.requires_grad for p in model.parameters()}
    params = list(model.parameters())
    scores: list[dict[str, torch.Tensor]] = []
    handles = []
    for p in params:
        p.requires_grad_(False)
    for block in layers:
        lay = BlockLayout(block)
        sizes = {"heads": lay.num_heads, "kv": lay.num_kv_heads, "ffn": lay.intermediate}
        sums = {k: torch.zeros(n, dtype=torch.float64) for k, n in sizes.items()}
        for name, lin in projections(block).items():
            kind, dim = _UNITS[name]
            lin.weight.requires_grad_(True)
            handles.append(lin.weight.register_post_accumulate_grad_hook(_folder(sums[kind], dim)))
        scores.append(sums)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.enable_grad():
            for start in range(0, calibration.shape[0], micro_batch):
                ids = calibration[start : start + micro_batch].long().to(device)
                model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
    finally:
        for h in handles:
            h.remove()
        for p in params:
            p.requires_grad_(flags[id(p)])
            p.grad = None
        model.train(was_training)
    return scores
