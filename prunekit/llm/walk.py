"""One decoder block of the block-wise walk: statistics, scores, choice, compensation, cut
and the next block's inputs (used by :func:`prunekit.llm.blockwise.prune_blockwise`).

Two ways to pass a block, with the same cut:

* **one pass** (:func:`prune_block_one_pass`, the default for the Llama layout
  ``h + self_attn(input_layernorm(h))``, then ``h + mlp(post_attention_layernorm(h))``):
  the calibration inputs run through the attention up to ``o_proj``, whose inputs are kept
  (and accumulated into statistics); the heads are scored, chosen, compensated and cut;
  the pruned attention's output is then *exactly* ``o_proj'(x[..., kept])`` from the held
  inputs, one cheap matmul. The FFN runs on that new residual up to ``down_proj``, and the
  same follows. Each block costs one dense forward (minus the two consumer matmuls) plus the
  two pruned consumer matmuls, and the FFN is scored on the inputs the pruned attention
  actually produces. :func:`one_pass_matches` checks once per model that the composition
  equals the block's own forward; if it does not, the walk uses
* **two passes** (:func:`prune_block_two_pass`): one forward with hooks gathers both
  consumers' statistics, the block is cut, a second forward of the pruned block produces the
  next inputs (layout-agnostic beyond the projection names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..surgery.llama_blocks import BlockLayout, cut_ffn, cut_heads, projections
from .activations import Chunk, run_block
from .budget import BlockCut
from .criteria import ChannelStats, channel_scores, compensate_bias, get_llm_criterion, unit_scores
from .lsq import lsq_refit

__all__ = [
    "COMPENSATIONS",
    "WalkOptions",
    "one_pass_matches",
    "prune_block_one_pass",
    "prune_block_two_pass",
    "select_heads",
]

COMPENSATIONS = ("none", "bias", "lsq")


@dataclass(frozen=True)
class WalkOptions:
    """How every block is scored and compensated."""

    criterion: str
    compensation: str
    lsq_damp: float

    @property
    def needs_stats(self) -> bool:
        """Consumer input statistics are needed (scores or compensation)."""
        crit = get_llm_criterion(self.criterion)
        return (crit.needs_data and not crit.gradient) or self.compensation != "none"


class _Stop(Exception):
    """Raised by a capture hook once the consumer's input is known."""


def _consumer_input(layer: nn.Module, run: Callable[[], Any]) -> torch.Tensor:
    """The input ``layer`` receives while ``run()`` executes; stops right before it."""
    got: list[torch.Tensor] = []

    def hook(_: nn.Module, args: tuple[Any, ...]) -> None:
        got.append(args[0])
        raise _Stop

    handle = layer.register_forward_pre_hook(hook)
    try:
        run()
    except _Stop:
        pass
    finally:
        handle.remove()
    return got[0]


def select_heads(scores: torch.Tensor, per_group: int, per_group_removed: int) -> torch.Tensor:
    """Indices of the ``per_group_removed`` lowest-scoring query heads of every KV group
    (group ``g`` holds heads ``g*per_group .. g*per_group + per_group - 1``), sorted."""
    if per_group_removed == 0:
        return torch.zeros(0, dtype=torch.long)
    grouped = scores.reshape(-1, per_group)
    low = grouped.argsort(dim=1, stable=True)[:, :per_group_removed]
    offsets = torch.arange(grouped.shape[0])[:, None] * per_group
    return (low + offsets).flatten().sort().values


def _new_stats(layer: nn.Linear, opts: WalkOptions) -> ChannelStats | None:
    if not opts.needs_stats:
        return None
    return ChannelStats(
        layer.in_features,
        gram=opts.compensation == "lsq",
        absolute=opts.criterion == "activation",
    )


def head_scores(block: nn.Module, stats: ChannelStats | None, opts: WalkOptions) -> torch.Tensor:
    """Per query head score of ``block`` from its ``o_proj`` input statistics."""
    p, lay = projections(block), BlockLayout(block)
    ch = channel_scores(opts.criterion, p["o_proj"].weight, stats, producers=(p["q_proj"].weight,))
    return unit_scores(opts.criterion, ch, lay.head_dim)


def ffn_scores(block: nn.Module, stats: ChannelStats | None, opts: WalkOptions) -> torch.Tensor:
    """Per FFN neuron score of ``block`` from its ``down_proj`` input statistics."""
    p = projections(block)
    rows = (p["gate_proj"].weight, p["up_proj"].weight)
    ch = channel_scores(opts.criterion, p["down_proj"].weight, stats, producers=rows)
    return unit_scores(opts.criterion, ch, 1)


def _compensate(
    layer: nn.Linear, removed: torch.Tensor, stats: ChannelStats | None, opts: WalkOptions
) -> None:
    if stats is None or removed.numel() == 0 or opts.compensation == "none":
        return
    if opts.compensation == "bias":
        compensate_bias(layer, removed, stats.mean)
        return
    keep = torch.ones(layer.in_features, dtype=torch.bool)
    keep[removed] = False
    lsq_refit(layer, keep.nonzero().flatten(), stats, damp=opts.lsq_damp)


def cut_attention(
    block: nn.Module, scores: torch.Tensor, k: int, stats: ChannelStats | None, opts: WalkOptions
) -> torch.Tensor:
    """Remove the ``k`` lowest heads of every KV group (compensated); returns them."""
    lay = BlockLayout(block)
    heads = select_heads(scores, lay.per_group, k)
    d = lay.head_dim
    channels = (heads[:, None] * d + torch.arange(d)[None, :]).flatten()
    _compensate(projections(block)["o_proj"], channels, stats, opts)
    cut_heads(block, heads)
    return heads


def cut_mlp(
    block: nn.Module, scores: torch.Tensor, n: int, stats: ChannelStats | None, opts: WalkOptions
) -> torch.Tensor:
    """Remove the ``n`` lowest FFN neurons (compensated); returns them."""
    ffn = scores.argsort(stable=True)[:n].sort().values
    _compensate(projections(block)["down_proj"], ffn, stats, opts)
    cut_ffn(block, ffn)
    return ffn


def _kept(total: int, removed: torch.Tensor, width: int) -> torch.Tensor:
    mask = torch.ones(total // width, dtype=torch.bool)
    mask[removed] = False
    units = mask.nonzero().flatten()
    return (units[:, None] * width + torch.arange(width)[None, :]).flatten()


def _attn_run(block: Any, hidden: torch.Tensor, kw: dict[str, Any]) -> Callable[[], Any]:
    return lambda: block.self_attn(hidden_states=block.input_layernorm(hidden), **kw)


def _ffn_run(block: Any, hidden: torch.Tensor) -> Callable[[], Any]:
    return lambda: block.mlp(block.post_attention_layernorm(hidden))


def one_pass_matches(block: nn.Module, chunk: Chunk) -> bool:
    """Whether the Llama composition (module docstring) reproduces ``block(hidden, **kw)``
    on ``chunk`` (checked once per model, before anything is cut)."""
    hidden, kw = chunk
    try:
        ref = block(hidden, **kw)
        ref = ref[0] if isinstance(ref, tuple) else ref
        attn = block.self_attn(hidden_states=block.input_layernorm(hidden), **kw)  # type: ignore[operator]
        mid = hidden + (attn[0] if isinstance(attn, tuple) else attn)
        out = mid + block.mlp(block.post_attention_layernorm(mid))  # type: ignore[operator]
    except (AttributeError, TypeError):
        return False
    tol = 1e-2 if hidden.dtype in (torch.bfloat16, torch.float16) else 1e-4
    return bool(torch.allclose(out.float(), ref.float(), atol=tol, rtol=tol))


def _stage(
    consumer: nn.Linear,
    chunks: list[Chunk],
    run: Callable[[torch.Tensor, dict[str, Any]], Callable[[], Any]],
    opts: WalkOptions,
) -> tuple[list[torch.Tensor], ChannelStats | None]:
    held, stats = [], _new_stats(consumer, opts)
    for hidden, kw in chunks:
        x = _consumer_input(consumer, run(hidden, kw))
        if stats is not None:
            stats.add(x)
        held.append(x)
    return held, stats


def _residual(
    chunks: list[Chunk], held: list[torch.Tensor], consumer: nn.Linear, keep: Any
) -> None:
    idx = keep.to(held[0].device)
    for j, (hidden, _) in enumerate(chunks):
        hidden.add_(consumer(held[j].index_select(-1, idx)))
        held[j] = hidden.new_empty(0)  # free the held input as soon as it is used


def prune_block_one_pass(
    block: nn.Module,
    chunks: list[Chunk],
    cut: BlockCut,
    opts: WalkOptions,
    given: dict[str, torch.Tensor] | None = None,
) -> dict[str, list[int]]:
    """Score, compensate and cut ``block`` in one pass; ``chunks`` become (in place) the
    next block's inputs. ``given``: precomputed unit scores (``taylor``)."""
    p, lay = projections(block), BlockLayout(block)
    held, stats = _stage(p["o_proj"], chunks, lambda h, kw: _attn_run(block, h, kw), opts)
    sc = given["heads"] if given else head_scores(block, stats, opts)
    heads = cut_attention(block, sc, cut.heads_per_group, stats, opts)
    _residual(chunks, held, p["o_proj"], _kept(lay.num_heads * lay.head_dim, heads, lay.head_dim))
    held, stats = _stage(p["down_proj"], chunks, lambda h, _: _ffn_run(block, h), opts)
    sc = given["ffn"] if given else ffn_scores(block, stats, opts)
    ffn = cut_mlp(block, sc, cut.ffn_neurons, stats, opts)
    _residual(chunks, held, p["down_proj"], _kept(lay.intermediate, ffn, 1))
    return {"heads": heads.tolist(), "ffn": ffn.tolist()}


def block_statistics(
    block: nn.Module, chunks: list[Chunk], opts: WalkOptions
) -> tuple[dict[str, ChannelStats | None], list[Chunk]]:
    """One forward of ``block`` over ``chunks`` with hooks on ``o_proj`` and ``down_proj``:
    their input statistics, and the block's outputs (the next block's inputs)."""
    p = projections(block)
    layers = {"attn": p["o_proj"], "ffn": p["down_proj"]}
    stats = {k: _new_stats(lin, opts) for k, lin in layers.items()}
    handles = [
        lin.register_forward_pre_hook(lambda _, a, s=stats[k]: s.add(a[0]) if s else None)
        for k, lin in layers.items()
    ]
    try:
        out = run_block(block, chunks)
    finally:
        for h in handles:
            h.remove()
    return stats, out


def prune_block_two_pass(
    block: nn.Module,
    chunks: list[Chunk],
    cut: BlockCut,
    opts: WalkOptions,
    given: dict[str, torch.Tensor] | None = None,
) -> tuple[dict[str, list[int]], list[Chunk]]:
    """Statistics in one forward, cut, then the pruned block's outputs (second forward)."""
    stats, _ = block_statistics(block, chunks, opts) if chunks else ({}, [])
    sa, sf = stats.get("attn"), stats.get("ffn")
    h_sc = given["heads"] if given else head_scores(block, sa, opts)
    f_sc = given["ffn"] if given else ffn_scores(block, sf, opts)
    heads = cut_attention(block, h_sc, cut.heads_per_group, sa, opts)
    ffn = cut_mlp(block, f_sc, cut.ffn_neurons, sf, opts)
    out = run_block(block, chunks) if chunks else []
    return {"heads": heads.tolist(), "ffn": ffn.tolist()}, out
