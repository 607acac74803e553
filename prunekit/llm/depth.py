"""Depth pruning of a decoder LLM: remove the blocks that change the residual stream least.

ShortGPT's *block influence* of decoder block ``i`` is one minus the mean, over every
calibration token ``t``, of the cosine between the block's input and output hidden states:

    BI_i = 1 - mean_t cos(x_i[t], x_{i+1}[t])

A block whose output is (nearly) its input (``BI ~ 0``) adds (nearly) nothing to the
residual stream, so :func:`prune_depth` removes the blocks of lowest influence. The scores
are measured block by block on the dense model with :mod:`prunekit.llm.activations`
(only one block's hidden states are held); ``metric="angular"`` uses the mean angle
``arccos(cos) / pi`` instead (Gromov et al.'s angular distance, for one block).
``iterative=True`` removes one block at a time and measures again on the shortened model
(one calibration pass per removed block).

The cut itself is :func:`prunekit.surgery.llama_blocks.remove_blocks`: the remaining blocks
are renumbered (``layer_idx``, the KV-cache slot) and ``config.num_hidden_layers`` /
``config.layer_types`` follow, so ``generate()`` and ``save_pretrained`` work afterwards.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm  # type: ignore[import-untyped]

from ..errors import ConfigError
from ..surgery.llama_blocks import decoder_layers, remove_blocks
from .activations import CALIBRATION_BATCH, capture_block_inputs, run_block

__all__ = ["METRICS", "DepthResult", "block_influence", "prune_depth"]

METRICS = ("cosine", "angular")
"""Block-influence measures: ``1 - mean cos`` (ShortGPT) or ``mean arccos(cos) / pi``."""


@dataclass
class DepthResult:
    """Outcome of :func:`prune_depth`.

    Attributes:
        model: The shortened model.
        removed: Original indices of the removed blocks, in removal order.
        scores: Block influence of every original block, measured on the dense model.
        metric: ``"cosine"`` or ``"angular"``; ``iterative`` whether scores were re-measured.
        block_params: Decoder-block parameters ``(before, after)``.
        seconds: Wall time.
        rescored: With ``iterative``, the scores (by original index) each removal was
            chosen from; empty otherwise.
    """

    model: nn.Module
    removed: list[int]
    scores: list[float]
    metric: str
    iterative: bool
    block_params: tuple[int, int]
    seconds: float
    rescored: list[dict[int, float]] = field(default_factory=list)

    @property
    def fraction_removed(self) -> float:
        """Fraction of the decoder-block parameters removed."""
        before, after = self.block_params
        return 1 - after / before

    def summary(self) -> str:
        """One line: blocks removed, their influence and the parameters removed."""
        before, after = self.block_params
        shown = ", ".join(f"{i} ({self.scores[i]:.4f})" for i in self.removed)
        return (
            f"depth ({self.metric}{', iterative' if self.iterative else ''}): removed "
            f"{len(self.removed)} of {len(self.scores)} blocks [{shown}]; decoder-block "
            f"params {before:,} -> {after:,} ({self.fraction_removed:.1%} removed) "
            f"in {self.seconds:.1f} s"
        )


def _influence(x: torch.Tensor, y: torch.Tensor, metric: str) -> tuple[float, int]:
    """Sum over tokens of the per-token influence of ``x -> y`` and the token count."""
    cos = torch.nn.functional.cosine_similarity(
        x.reshape(-1, x.shape[-1]).double(), y.reshape(-1, y.shape[-1]).double(), dim=-1
    )
    per_token = 1 - cos if metric == "cosine" else torch.arccos(cos.clamp(-1, 1)) / math.pi
    return float(per_token.sum()), int(per_token.numel())


def block_influence(
    model: nn.Module, calibration: torch.Tensor, *, metric: str = "cosine", progress: bool = False
) -> list[float]:
    """Influence of every decoder block of ``model`` on the ``(N, L)`` token ids
    ``calibration`` (module docstring), block by block; ``model`` is not changed."""
    _check_metric(metric)
    layers = decoder_layers(model)
    was_training = model.training
    model.eval()
    scores: list[float] = []
    try:
        with torch.no_grad():
            chunks = capture_block_inputs(
                model, layers[0], calibration.long(), batch=CALIBRATION_BATCH
            )
            for block in tqdm(layers, disable=not progress, unit="block", desc="influence"):
                nxt = run_block(block, chunks)
                total, count = 0.0, 0
                for (x, _), (y, _) in zip(chunks, nxt):
                    s, c = _influence(x, y, metric)
                    total, count = total + s, count + c
                scores.append(total / max(count, 1))
                chunks = nxt
    finally:
        model.train(was_training)
    return scores


def _check_metric(metric: object) -> None:
    if metric not in METRICS:
        raise ConfigError(f"prune_depth: metric={metric!r} unknown; use one of {list(METRICS)}")


def _check(
    calibration: object, blocks: object, ratio: object, n: int, flags: Mapping[str, object]
) -> None:
    if not isinstance(calibration, torch.Tensor) or calibration.dim() != 2:
        got = getattr(calibration, "shape", type(calibration).__name__)
        raise ConfigError(
            f"prune_depth: calibration must be an (N, L) tensor of token ids, got {got}; "
            "use prunekit.data.text.calibration_batch"
        )
    if (blocks is None) == (ratio is None):
        raise ConfigError(
            f"prune_depth: give exactly one of blocks= (a count) or ratio= (a fraction of "
            f"decoder-block params), got blocks={blocks!r}, ratio={ratio!r}"
        )
    if blocks is not None and (
        isinstance(blocks, bool) or not isinstance(blocks, int) or not 1 <= blocks < n
    ):
        raise ConfigError(f"prune_depth: blocks={blocks!r} must be an int in [1, {n - 1}]")
    if ratio is not None and (
        isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1
    ):
        raise ConfigError(f"prune_depth: ratio={ratio!r} must be a float in (0, 1)")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ConfigError(f"prune_depth: {name}={value!r} must be True or False")


def _count_for_ratio(sizes: list[int], order: list[int], ratio: float) -> int:
    """Fewest blocks, taken in ``order``, whose parameters reach ``ratio`` of the total
    (warns with the neighbouring achievable fractions when it is not met exactly)."""
    total, acc = sum(sizes), 0
    reached = [0.0]
    for i in order[:-1]:
        acc += sizes[i]
        reached.append(acc / total)
    count = next((k for k, f in enumerate(reached) if f >= ratio - 1e-9), len(reached) - 1)
    count = max(count, 1)
    if not math.isclose(reached[count], ratio, abs_tol=1e-3):
        warnings.warn(
            f"prune_depth: ratio={ratio} cannot be met with whole blocks; removing {count} "
            f"block(s) = {reached[count]:.3f} of the decoder-block params (with "
            f"{count - 1}: {reached[count - 1]:.3f}); pass blocks= for an exact count",
            stacklevel=3,
        )
    return count


def _block_sizes(layers: nn.ModuleList) -> list[int]:
    return [sum(p.numel() for p in b.parameters()) for b in layers]


def prune_depth(
    model: nn.Module,
    calibration: torch.Tensor,
    *,
    blocks: int | None = None,
    ratio: float | None = None,
    metric: str = "cosine",
    iterative: bool = False,
    inplace: bool = False,
    progress: bool = True,
) -> DepthResult:
    """Remove the decoder blocks of lowest influence (module docstring).

    Args:
        model: A Llama-layout causal LM (``model(input_ids=...)``, a ModuleList of blocks).
        calibration: ``(N, L)`` int token ids (e.g. :func:`prunekit.data.text.calibration_batch`).
        blocks: How many blocks to remove; or give ``ratio``.
        ratio: Fraction of the decoder-block parameters to remove: the fewest
            lowest-influence blocks that reach it (a warning names the achievable fractions
            when whole blocks cannot meet it).
        metric: ``"cosine"`` (ShortGPT, ``1 - mean cos``) or ``"angular"``.
        iterative: Remove one block at a time and measure again on the shortened model
            (with ``ratio``, the number of blocks is fixed from the dense ranking).
        inplace: Cut ``model`` itself (default: a deep copy is cut).
        progress: Show a progress bar over the blocks.

    Returns:
        The :class:`DepthResult`.

    Raises:
        ConfigError: If an argument is malformed or the model is not Llama-layout.
    """
    start = time.perf_counter()
    _check_metric(metric)
    n = len(decoder_layers(model))
    flags = {"iterative": iterative, "inplace": inplace, "progress": progress}
    _check(calibration, blocks, ratio, n, flags)
    model = model if inplace else copy.deepcopy(model)
    scores = block_influence(model, calibration, metric=metric, progress=progress)
    sizes = _block_sizes(decoder_layers(model))
    before = sum(sizes)
    order = sorted(range(n), key=lambda i: (scores[i], i))
    count = blocks if blocks is not None else _count_for_ratio(sizes, order, float(ratio or 0))
    rescored: list[dict[int, float]] = []
    if not iterative:
        removed = order[:count]
        remove_blocks(model, removed)
    else:
        removed, alive, current = [], list(range(n)), scores
        for _ in range(count):
            rescored.append(dict(zip(alive, current)))
            pos = min(range(len(alive)), key=lambda k: (current[k], alive[k]))
            removed.append(alive.pop(pos))
            remove_blocks(model, [pos])
            if len(removed) < count:
                current = block_influence(model, calibration, metric=metric, progress=progress)
    after = sum(_block_sizes(decoder_layers(model)))
    seconds = time.perf_counter() - start
    return DepthResult(
        model, removed, scores, metric, iterative, (before, after), seconds, rescored
    )
