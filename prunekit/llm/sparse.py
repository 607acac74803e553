"""Weight-level sparsity of a decoder LLM, calibrated block by block: magnitude, Wanda and
SparseGPT, unstructured or N:M, with uniform or OWL per-block sparsity (issue #18).

:func:`sparsify` walks the decoder as every block-wise method of :mod:`prunekit.llm` does
(:mod:`.activations`): block 0's inputs are captured once, and each block is sparsified on
the inputs produced by the *already sparsified* blocks before it (SparseGPT order).

Inside a block the seven projections are pruned in four stages, *true-sequential* (GPTQ /
SparseGPT's ``--true-sequential`` order): ``q/k/v_proj`` (one shared input), ``o_proj``,
``gate/up_proj`` (one shared input), ``down_proj``. Before each stage the block's inputs are
run (up to that stage's first layer only) through the block with the earlier stages already
pruned, so ``o_proj`` is fitted to the attention output of the *sparse* q/k/v and
``down_proj`` to the sparse MLP's activations. This costs about 1.5 extra block passes per
block and was chosen over the one-pass variant (all seven inputs from the dense block, as
the Wanda repository does; ``sequential=False``) because reconstruction methods (SparseGPT)
then correct the error of the earlier stages too.

Criteria (``W`` the ``(out, in)`` weight, ``X`` the layer's calibration inputs):

* ``magnitude``: ``|W_ij|`` compared over the whole layer (no data);
* ``wanda``: ``|W_ij| * ||X_j||_2`` compared within each output row (Wanda's group);
* ``sparsegpt``: OBS pruning with reconstruction on the damped Hessian
  ``2/n X^T X + damp * mean(diag) * I`` (:mod:`.sparsegpt`).

N:M (``pattern="2:4"``): keep the ``N`` best of every ``M`` consecutive input weights of a
row. The mask is applied by zeroing weights: the model stays a plain Hugging Face model.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from tqdm.auto import tqdm  # type: ignore[import-untyped]

from ..errors import ConfigError
from ..sparsity.masks import nm_mask, row_mask, unstructured_mask
from ..surgery.llama_blocks import decoder_layers, projections
from .activations import CALIBRATION_BATCH, Chunk, GramStats, capture_block_inputs, run_block
from .criteria import ChannelStats
from .owl import outlier_ratio, owl_sparsities
from .sparse_config import ALLOCATIONS, METHODS, SparseConfig, parse_config
from .sparsegpt import sparsegpt_prune

__all__ = ["ALLOCATIONS", "METHODS", "STAGES", "SparsityResult", "sparsify"]

STAGES: tuple[tuple[str, ...], ...] = (
    ("q_proj", "k_proj", "v_proj"),
    ("o_proj",),
    ("gate_proj", "up_proj"),
    ("down_proj",),
)
"""The projections of a block in pruning order; the layers of a stage share one input."""


@dataclass
class SparsityResult:
    """Outcome of :func:`sparsify`.

    Attributes:
        model: The sparsified model (weights zeroed in place of the masks).
        method, pattern, allocation: As requested.
        block_sparsity: The target sparsity of each decoder block (all equal unless OWL).
        layer_sparsity: Achieved fraction of zero weights of each projection, by module name.
        sparsity: Achieved fraction of zeros over every projection of every block.
        seconds: Wall time.
        outlier_ratios: OWL's per-block outlier ratios (empty for ``uniform``).
    """

    model: nn.Module
    method: str
    pattern: str
    allocation: str
    block_sparsity: list[float]
    layer_sparsity: dict[str, float]
    sparsity: float
    seconds: float
    outlier_ratios: list[float] = field(default_factory=list)

    def summary(self) -> str:
        """One line: method, pattern, allocation, achieved sparsity and time."""
        spread = ""
        if self.allocation == "owl" and self.block_sparsity:
            spread = f" (blocks {min(self.block_sparsity):.3f}..{max(self.block_sparsity):.3f})"
        return (
            f"{self.method} {self.pattern} {self.allocation}{spread}: "
            f"{self.sparsity:.2%} of the {len(self.layer_sparsity)} block linears' weights "
            f"zeroed in {self.seconds:.1f} s"
        )

    def masks(self) -> dict[str, torch.Tensor]:
        """Keep-masks (``weight != 0``) of every sparsified projection, by module name."""
        mods = dict(self.model.named_modules())
        return {n: mods[n].weight.detach() != 0 for n in self.layer_sparsity}


class _Stop(Exception):
    """Raised by a statistics hook once the stage's input is seen (the rest is not run)."""


class _Gram(GramStats):
    """:class:`GramStats` whose per-batch ``X^T X`` is a float32 product (summed in float64):
    half the time of a float64 product; each batch holds a few thousand tokens, so the
    float32 sum's relative error (~1e-6) is far below SparseGPT's 1% damping."""

    def add(self, x: torch.Tensor) -> None:
        flat = x.detach().reshape(-1, x.shape[-1]).float()
        if flat.shape[-1] != self.gram.shape[0]:
            super().add(x)  # raises the shared DataError
        self.count += flat.shape[0]
        self.gram += (flat.T @ flat).double().cpu()


Stats = ChannelStats | GramStats


def _collect(
    block: nn.Module,
    chunks: list[Chunk],
    leaders: tuple[str, ...],
    factory: Callable[[int], Stats],
    *,
    stop: bool,
) -> tuple[dict[str, Stats], list[Chunk]]:
    """Input statistics of the ``leaders`` projections over every chunk. With ``stop`` the
    block stops at the last leader's input (no outputs); else the outputs are returned."""
    proj = projections(block)
    stats = {n: factory(proj[n].in_features) for n in leaders}

    def hook_for(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(_: nn.Module, args: tuple[Any, ...]) -> None:
            stats[name].add(args[0])
            if stop and name == leaders[-1]:
                raise _Stop

        return hook

    handles = [proj[n].register_forward_pre_hook(hook_for(n)) for n in leaders]
    outputs: list[Chunk] = []
    try:
        for hidden, kw in chunks:
            try:
                y = block(hidden, **kw)
            except _Stop:
                continue
            outputs.append(((y[0] if isinstance(y, tuple) else y).detach(), kw))
    finally:
        for h in handles:
            h.remove()
    return stats, outputs


def _keep_mask(cfg: SparseConfig, lin: nn.Linear, stats: Stats | None, s: float) -> torch.Tensor:
    """Keep-mask of ``lin`` for magnitude or Wanda at sparsity ``s`` (or ``cfg.nm``)."""
    w = lin.weight.detach()
    if cfg.method == "wanda":
        norm = cast(ChannelStats, stats).norm
        score = w.abs().float() * norm.to(device=w.device, dtype=torch.float32)[None, :]
    else:
        score = w.abs().float()
    if cfg.nm is not None:
        return nm_mask(score, cfg.nm[0], cfg.nm[1], in_dim=1)
    return row_mask(score, s) if cfg.method == "wanda" else unstructured_mask(score, s)


def _prune_layer(cfg: SparseConfig, lin: nn.Linear, stats: Stats | None, s: float) -> None:
    with torch.no_grad():
        if cfg.method == "sparsegpt":
            gram = cast(GramStats, stats)
            new = sparsegpt_prune(
                lin.weight,
                gram.gram,
                gram.count,
                sparsity=s,
                nm=cfg.nm,
                damp=cfg.damp,
                blocksize=cfg.blocksize,
            )
            lin.weight.copy_(new)
        else:
            lin.weight.mul_(_keep_mask(cfg, lin, stats, s).to(lin.weight.dtype))


def _sparsify_block(cfg: SparseConfig, block: nn.Module, chunks: list[Chunk], s: float) -> None:
    """Prune the seven projections of ``block`` at sparsity ``s``, stage by stage."""
    proj = projections(block)
    if cfg.method == "magnitude":
        for stage in STAGES:
            for name in stage:
                _prune_layer(cfg, proj[name], None, s)
        return
    factory: Callable[[int], Stats] = _Gram if cfg.method == "sparsegpt" else ChannelStats
    leaders = tuple(stage[0] for stage in STAGES)
    stats: dict[str, Stats] = {}
    if not cfg.sequential:
        stats, _ = _collect(block, chunks, leaders, factory, stop=True)
    for stage in STAGES:
        if cfg.sequential:
            stats, _ = _collect(block, chunks, (stage[0],), factory, stop=True)
        for name in stage:
            _prune_layer(cfg, proj[name], stats[stage[0]], s)


def _owl_ratios(
    layers: nn.ModuleList, chunks: list[Chunk], threshold: float, progress: bool
) -> list[float]:
    """OWL outlier ratio of every block, from Wanda scores on the dense model."""
    leaders = tuple(stage[0] for stage in STAGES)
    ratios = []
    for block in tqdm(layers, desc="owl outliers", unit="block", disable=not progress):
        stats, chunks = _collect(block, chunks, leaders, ChannelStats, stop=False)
        proj = projections(block)
        scores = []
        for stage in STAGES:
            norm = cast(ChannelStats, stats[stage[0]]).norm
            for name in stage:
                w = proj[name].weight.detach()
                scores.append(w.abs().double() * norm.to(w.device)[None, :])
        ratios.append(outlier_ratio(scores, threshold))
    return ratios


def _check_layers(cfg: SparseConfig, layers: nn.ModuleList) -> None:
    if cfg.nm is None:
        return
    for i, block in enumerate(layers):
        for name, lin in projections(block).items():
            if lin.in_features % cfg.nm[1]:
                raise ConfigError(
                    f"sparsify: block {i} {name} has {lin.in_features} input features, not a "
                    f"multiple of M={cfg.nm[1]} (pattern {cfg.pattern!r}); choose another M"
                )


def _achieved(model: nn.Module, layers: nn.ModuleList) -> tuple[dict[str, float], float]:
    names = {id(m): n for n, m in model.named_modules()}
    per, zeros, total = {}, 0, 0
    for block in layers:
        for lin in projections(block).values():
            z = int((lin.weight == 0).sum())
            per[names[id(lin)]] = z / lin.weight.numel()
            zeros, total = zeros + z, total + lin.weight.numel()
    return per, zeros / max(total, 1)


def sparsify(  # noqa: PLR0913  (the keyword API of issue #18)
    model: nn.Module,
    calibration: torch.Tensor | None,
    *,
    method: str = "wanda",
    sparsity: float | None = None,
    pattern: str = "unstructured",
    allocation: str = "uniform",
    owl_lambda: float = 0.08,
    owl_threshold: float = 5.0,
    damp: float = 0.01,
    blocksize: int = 128,
    sequential: bool = True,
    inplace: bool = False,
    progress: bool = True,
) -> SparsityResult:
    """Zero weights of every decoder block's projections, block by block (module docstring).

    Args:
        model: A Llama-layout causal LM (``model(input_ids=...)``; ``model.model.layers``).
        calibration: ``(N, L)`` int token ids (:func:`prunekit.data.text.calibration_batch`);
            may be ``None`` only for ``method="magnitude"`` with ``allocation="uniform"``.
        method: ``"magnitude"``, ``"wanda"`` or ``"sparsegpt"``.
        sparsity: Fraction of weights to zero (default 0.5); for an N:M pattern it is
            ``1 - N/M`` and may be left ``None``.
        pattern: ``"unstructured"`` or ``"N:M"`` (keep N of every M consecutive inputs).
        allocation: ``"uniform"`` (every block at ``sparsity``) or ``"owl"`` (per-block
            sparsity from the outlier ratio of Wanda scores, :mod:`.owl`; unstructured only).
        owl_lambda: OWL's spread: block sparsities span ``2 * owl_lambda`` around the target.
        owl_threshold: OWL's outlier threshold ``M`` (times the block's mean score).
        damp: SparseGPT's relative Hessian damping.
        blocksize: SparseGPT's columns per lazy-update block.
        sequential: Re-collect each stage's inputs after the earlier stages of the block are
            pruned (default); ``False`` collects all from the block before pruning it.
        inplace: Sparsify ``model`` itself (default: a deep copy).
        progress: Show a progress bar over the blocks.

    Returns:
        The :class:`SparsityResult`.

    Raises:
        ConfigError: If an argument is malformed (the message lists the valid values).

    Example:
        >>> import transformers
        >>> cfg = transformers.LlamaConfig(vocab_size=61, hidden_size=32, intermediate_size=64,
        ...     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
        >>> model = transformers.LlamaForCausalLM(cfg).eval()
        >>> ids = torch.randint(0, 61, (4, 32))
        >>> res = sparsify(model, ids, method="sparsegpt", pattern="2:4", progress=False)
        >>> round(res.sparsity, 2), res.model is model
        (0.5, False)
    """
    cfg = parse_config(
        method, sparsity, pattern, allocation, owl_lambda=owl_lambda,
        owl_threshold=owl_threshold, damp=damp, blocksize=blocksize, sequential=sequential,
    )  # fmt: skip
    needs_data = cfg.method != "magnitude" or cfg.allocation == "owl"
    if needs_data and (not isinstance(calibration, torch.Tensor) or calibration.dim() != 2):
        raise ConfigError(
            f"sparsify: method={cfg.method!r} with allocation={cfg.allocation!r} needs "
            "calibration as an (N, L) tensor of token ids (prunekit.data.text.calibration_batch)"
        )
    start = time.perf_counter()
    layers = decoder_layers(model)
    _check_layers(cfg, layers)
    model = model if inplace else copy.deepcopy(model)
    layers = decoder_layers(model)
    was_training = model.training
    model.eval()
    ratios: list[float] = []
    with torch.no_grad():
        ids = calibration.long() if isinstance(calibration, torch.Tensor) else None
        targets = [cfg.sparsity] * len(layers)
        if cfg.allocation == "owl" and ids is not None:
            chunks = capture_block_inputs(model, layers[0], ids, batch=CALIBRATION_BATCH)
            ratios = _owl_ratios(layers, chunks, cfg.owl_threshold, progress)
            targets = owl_sparsities(ratios, cfg.sparsity, cfg.owl_lambda)
        chunks = []
        if cfg.method != "magnitude" and ids is not None:
            chunks = capture_block_inputs(model, layers[0], ids, batch=CALIBRATION_BATCH)
        bar = tqdm(layers, desc=f"sparsify ({cfg.method})", unit="block", disable=not progress)
        for i, block in enumerate(bar):
            _sparsify_block(cfg, block, chunks, targets[i])
            if chunks and i + 1 < len(layers):
                chunks = run_block(block, chunks)
    model.train(was_training)
    per, overall = _achieved(model, layers)
    seconds = time.perf_counter() - start
    return SparsityResult(
        model, cfg.method, cfg.pattern, cfg.allocation, targets, per, overall, seconds, ratios
    )
