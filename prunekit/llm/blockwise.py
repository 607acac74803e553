"""Block-by-block calibrated structured pruning of a decoder LLM (FLAP / SparseGPT order).

``prune_blockwise(model, calibration, criterion="flap", head_ratio=..., target=0.2)``:

1. the calibration windows (``(N, L)`` token ids) run through the embedding; the inputs of
   decoder block 0 (and the keywords it is called with: rotary embeddings, mask) are
   captured and the rest of the model is not run;
2. for each block in order (:mod:`prunekit.llm.walk`): the statistics of the ``o_proj`` and
   ``down_proj`` inputs are accumulated (:class:`~.criteria.ChannelStats`; only this
   block's hidden states are held), the units are scored (:mod:`prunekit.llm.criteria`, or
   Taylor scores of the dense model, :mod:`prunekit.llm.taylor`), the lowest are cut
   (:mod:`prunekit.surgery.llama_blocks`: query heads within each KV group, FFN neurons),
   the consumer is compensated (``compensation``: none, FLAP's ``bias``, or the
   least-squares refit ``lsq``, :mod:`prunekit.llm.lsq`), and the *pruned* block produces
   the next block's inputs (one forward per block: :func:`~.walk.prune_block_one_pass`).

Allocation: ``uniform`` (:func:`~.budget.uniform_cut`; every block loses the same units, so
``model.config`` describes the result and ``from_pretrained`` reloads it) or ``adaptive``
(:func:`~.allocation.adaptive_cuts`: FLAP's standardised global scores from one dense pass;
per-block widths, recorded in ``model.config.prunekit_layer_widths``). The model is cut in
place when ``inplace=True`` (no copy: the memory is the weights plus one block's
activations).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError
from ..spec import renamed
from ..surgery.llama_blocks import BlockLayout, decoder_layers, projections, sync_llm_config
from .activations import CALIBRATION_BATCH, Chunk, capture_block_inputs
from .allocation import ALLOCATIONS, UNIT_KINDS, adaptive_cuts
from .budget import BlockCut, UniformCut, uniform_cut
from .criteria import get_llm_criterion
from .lsq import LSQ_DAMP
from .taylor import taylor_scores
from .walk import (
    COMPENSATIONS,
    WalkOptions,
    block_statistics,
    ffn_scores,
    head_scores,
    one_pass_matches,
    prune_block_one_pass,
    prune_block_two_pass,
    select_heads,
)

__all__ = ["BlockwiseResult", "prune_blockwise", "select_heads"]


@dataclass
class BlockwiseResult:
    """Outcome of :func:`prune_blockwise`.

    Attributes:
        model: The pruned model.
        cut: What every block lost (uniform allocation), else ``None``.
        criterion: The criterion's name.
        compensation: ``"none"``, ``"bias"`` or ``"lsq"``.
        block_params: Decoder-block parameters ``(before, after)``.
        seconds: Wall time.
        removed: Per block, ``{"heads": [...], "ffn": [...]}`` (original indices).
        cuts: Per block, the :class:`~.budget.BlockCut`.
        allocation: ``"uniform"`` or ``"adaptive"``.
        one_pass: Whether the one-forward-per-block walk was used.
    """

    model: nn.Module
    cut: UniformCut | None
    criterion: str
    compensation: str
    block_params: tuple[int, int]
    seconds: float
    removed: list[dict[str, list[int]]] = field(default_factory=list)
    cuts: list[BlockCut] = field(default_factory=list)
    allocation: str = "uniform"
    one_pass: bool = True

    @property
    def bias_compensation(self) -> bool:
        """FLAP's bias compensation was applied (``compensation == "bias"``)."""
        return self.compensation == "bias"

    def summary(self) -> str:
        """One line: criterion, cut and parameters removed."""
        before, after = self.block_params
        if self.cut is not None:
            what = (
                f"{self.cut.heads_per_group} head(s)/KV group, {self.cut.ffn_neurons} FFN "
                "neurons per block"
            )
        else:
            heads = sum(c.heads_per_group for c in self.cuts)
            ffn = sum(c.ffn_neurons for c in self.cuts)
            what = f"adaptive: {heads} head tranche(s), {ffn} FFN neurons over all blocks"
        comp = "" if self.compensation == "none" else f" + {self.compensation}"
        return (
            f"{self.criterion}{comp}: {what}; decoder-block params {before:,} -> {after:,} "
            f"({1 - after / before:.1%} removed) in {self.seconds:.1f} s"
        )


def _block_params(layers: nn.ModuleList) -> int:
    return sum(p.numel() for p in layers.parameters())


def _options(
    criterion: str, compensation: str | None, bias_compensation: bool | None, damp: float
) -> WalkOptions:
    get_llm_criterion(criterion)  # unknown name -> RegistryError with the valid names
    old = None if bias_compensation is None else ("bias" if bias_compensation else "none")
    comp = renamed("compensation", compensation, "bias_compensation", old, "prune_blockwise")
    comp = ("bias" if criterion == "flap" else "none") if comp is None else comp
    if comp not in COMPENSATIONS:
        raise ConfigError(
            f"prune_blockwise: compensation={comp!r} is unknown; use one of {COMPENSATIONS}"
        )
    if isinstance(damp, bool) or not float(damp) >= 0.0:
        raise ConfigError(f"prune_blockwise: lsq_damp must be >= 0, got {damp!r}")
    return WalkOptions(criterion, comp, float(damp))


def _dense_scores(
    layers: nn.ModuleList, chunks: list[Chunk], opts: WalkOptions
) -> list[dict[str, torch.Tensor]]:
    """Unit scores of every block on the dense model (one forward per block)."""
    scores = []
    for block in layers:
        stats, chunks = block_statistics(block, chunks, opts)
        scores.append(
            {
                "heads": head_scores(block, stats["attn"], opts),
                "ffn": ffn_scores(block, stats["ffn"], opts),
            }
        )
    return scores


def _plan(
    model: nn.Module,
    calibration: torch.Tensor,
    opts: WalkOptions,
    given: list[dict[str, torch.Tensor]] | None,
    allocation: str,
    ratios: dict[str, float | None],
    units: Sequence[str],
    round_to: int,
) -> tuple[list[BlockCut], UniformCut | None]:
    layers = decoder_layers(model)
    hidden = projections(layers[0])["o_proj"].out_features
    if allocation == "uniform":
        u = uniform_cut(BlockLayout(layers[0]), hidden, round_to=round_to, **ratios)  # type: ignore[arg-type]
        return [BlockCut(u.heads_per_group, u.ffn_neurons)] * len(layers), u
    if ratios["target"] is None or ratios["ffn_ratio"] is not None or ratios["head_ratio"]:
        raise ConfigError(
            "prune_blockwise: allocation='adaptive' takes target= (and units=), not "
            f"head_ratio={ratios['head_ratio']!r} / ffn_ratio={ratios['ffn_ratio']!r}"
        )
    if given is None:
        chunks = capture_block_inputs(model, layers[0], calibration, batch=CALIBRATION_BATCH)
        given = _dense_scores(layers, chunks, opts)
    lays = [BlockLayout(b) for b in layers]
    cuts = adaptive_cuts(
        lays, hidden, given, target=float(ratios["target"]), units=units, round_to=round_to
    )
    return cuts, None


def _walk(
    layers: nn.ModuleList,
    chunks: list[Chunk],
    cuts: list[BlockCut],
    opts: WalkOptions,
    given: list[dict[str, torch.Tensor]] | None,
) -> tuple[list[dict[str, list[int]]], bool]:
    one_pass = bool(chunks) and one_pass_matches(layers[0], chunks[0])
    removed = []
    for i, block in enumerate(layers):
        g = given[i] if given else None
        if one_pass:
            removed.append(prune_block_one_pass(block, chunks, cuts[i], opts, g))
        else:
            rem, chunks = prune_block_two_pass(block, chunks, cuts[i], opts, g)
            removed.append(rem)
    return removed, one_pass


def prune_blockwise(  # noqa: PLR0913  (the keyword API of issue #18)
    model: nn.Module,
    calibration: torch.Tensor,
    *,
    criterion: str = "flap",
    head_ratio: float = 0.0,
    ffn_ratio: float | None = None,
    target: float | None = None,
    compensation: str | None = None,
    allocation: str = "uniform",
    units: Sequence[str] = UNIT_KINDS,
    round_to: int = 1,
    lsq_damp: float = LSQ_DAMP,
    micro_batch: int = 1,
    inplace: bool = False,
    bias_compensation: bool | None = None,
) -> BlockwiseResult:
    """Prune query heads (within KV groups) and FFN neurons of every decoder block, block
    by block on calibration activations (module docstring).

    Args:
        model: A Llama-layout causal LM (``model(input_ids=...)``; ``model.model.layers``).
        calibration: ``(N, L)`` int token ids (e.g. :func:`prunekit.data.text.calibration_batch`).
        criterion: A registered LLM criterion (:func:`~.criteria.available_llm_criteria`:
            ``flap``, ``wanda_sp``, ``activation``, ``taylor``, ``magnitude``, ``random``).
        head_ratio: Uniform: fraction of query heads to remove (rounded per KV group, with
            a warning naming the achievable ratios).
        ffn_ratio: Uniform: fraction of FFN neurons to remove; or give ``target`` instead.
        target: Fraction of the blocks' projection parameters to remove (uniform: heads
            first, the FFN fills the rest; adaptive: shared by ``units`` by global score).
        compensation: ``"none"``, ``"bias"`` (FLAP) or ``"lsq"``; default ``"bias"`` for
            ``flap``, else ``"none"``.
        allocation: ``"uniform"`` or ``"adaptive"`` (module docstring).
        units: Adaptive: unit kinds that may be removed (``"heads"``, ``"ffn"``).
        round_to: Kept FFN widths are multiples of it.
        lsq_damp: Relative damping of the least-squares refit (:mod:`.lsq`).
        micro_batch: ``taylor``: windows per forward/backward pass.
        inplace: Cut ``model`` itself (default: a deep copy is cut).
        bias_compensation: Deprecated alias: ``True`` is ``compensation="bias"``, ``False``
            is ``"none"``.

    Returns:
        The :class:`BlockwiseResult`; ``result.model.config`` describes the pruned widths
        (per block in ``config.prunekit_layer_widths`` when they differ).

    Raises:
        ConfigError: If an argument is malformed or the model is not Llama-layout.
        RegistryError: If ``criterion`` is unknown (the message lists the valid names).
    """
    opts = _options(criterion, compensation, bias_compensation, lsq_damp)
    if allocation not in ALLOCATIONS:
        raise ConfigError(f"prune_blockwise: allocation={allocation!r}; use one of {ALLOCATIONS}")
    if not isinstance(calibration, torch.Tensor) or calibration.dim() != 2:
        raise ConfigError("prune_blockwise: calibration must be an (N, L) tensor of token ids")
    start = time.perf_counter()
    model = model if inplace else copy.deepcopy(model)
    layers = decoder_layers(model)
    before = _block_params(layers)
    ids = calibration.long()
    was_training = model.training
    model.eval()
    given = None
    if get_llm_criterion(criterion).gradient:
        given = taylor_scores(model, ids, micro_batch=micro_batch)
    ratios = {"head_ratio": head_ratio, "ffn_ratio": ffn_ratio, "target": target}
    with torch.no_grad():
        cuts, ucut = _plan(model, ids, opts, given, allocation, ratios, units, round_to)
        chunks = (
            capture_block_inputs(model, layers[0], ids, batch=CALIBRATION_BATCH)
            if opts.needs_stats
            else []
        )
        removed, one_pass = _walk(layers, chunks, cuts, opts, given)
    model.train(was_training)
    sync_llm_config(model)
    seconds = time.perf_counter() - start
    after = _block_params(layers)
    return BlockwiseResult(
        model,
        ucut,
        criterion,
        opts.compensation,
        (before, after),
        seconds,
        removed,
        cuts,
        allocation,
        one_pass,
    )
