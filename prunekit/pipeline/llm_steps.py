"""The prune steps of an LLM recipe, applied in order to one copy of the dense model.

Each step calls its library function (``structured``: :func:`prunekit.llm.prune_blockwise`,
``depth``: :func:`prunekit.llm.prune_depth`, ``sparse``: :func:`prunekit.llm.sparsify`) in
place on the copy, with the recipe's calibration batch, and returns a JSON-able record of
what it did (its one-line summary, its parameters before and after, what it removed). The
warnings a step raises (a head ratio the KV groups cannot meet, a depth ratio whole blocks
cannot meet) are kept as the run's notes.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..recipe.llm import DepthStep, SparseStep, StructuredStep

__all__ = ["apply_steps", "run_step"]

Step = StructuredStep | DepthStep | SparseStep
Log = Callable[[str], None]


def _structured(model: nn.Module, step: StructuredStep, calib: torch.Tensor,
                progress: bool) -> dict[str, Any]:  # fmt: skip
    from ..llm import prune_blockwise

    res = prune_blockwise(model, calib, inplace=True, **step.call_kwargs())
    record: dict[str, Any] = {"summary": res.summary(), "block_params": list(res.block_params),
                              "seconds": res.seconds, "allocation": res.allocation,
                              "compensation": res.compensation, "removed": res.removed}  # fmt: skip
    if res.cut is not None:  # uniform: the same cut everywhere
        record.update(heads_per_group=res.cut.heads_per_group, ffn_neurons=res.cut.ffn_neurons,
                      block_fraction=res.cut.block_fraction)  # fmt: skip
    return record


def _depth(model: nn.Module, step: DepthStep, calib: torch.Tensor,
           progress: bool) -> dict[str, Any]:  # fmt: skip
    from ..llm import prune_depth

    res = prune_depth(model, calib, inplace=True, progress=progress, **step.call_kwargs())
    return {"summary": res.summary(), "block_params": list(res.block_params),
            "seconds": res.seconds, "removed_blocks": list(res.removed),
            "scores": list(res.scores)}  # fmt: skip


def _sparse(model: nn.Module, step: SparseStep, calib: torch.Tensor,
            progress: bool) -> dict[str, Any]:  # fmt: skip
    from ..llm import sparsify

    res = sparsify(model, calib, inplace=True, progress=progress, **step.call_kwargs())
    return {"summary": res.summary(), "seconds": res.seconds, "sparsity": res.sparsity,
            "block_sparsity": list(res.block_sparsity),
            "layer_sparsity": dict(res.layer_sparsity)}  # fmt: skip


def run_step(
    model: nn.Module, step: Step, calibration: torch.Tensor, *, progress: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Apply one step to ``model`` in place; ``(its record, the warnings it raised)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if isinstance(step, StructuredStep):
            record = _structured(model, step, calibration, progress)
        elif isinstance(step, DepthStep):
            record = _depth(model, step, calibration, progress)
        else:
            record = _sparse(model, step, calibration, progress)
    notes = [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]
    return {"method": step.method, **record}, notes


def apply_steps(
    dense: nn.Module,
    steps: list[Step],
    calibration: torch.Tensor,
    *,
    progress: bool = False,
    log: Log | None = None,
) -> tuple[nn.Module, list[dict[str, Any]], list[str]]:
    """Apply ``steps`` in order to a copy of ``dense`` (left unchanged).

    Returns:
        ``(pruned model, one record per step, the steps' warnings)``.
    """
    say = log or (lambda _msg: None)
    model = copy.deepcopy(dense)
    records, notes = [], []
    for i, step in enumerate(steps):
        record, caught = run_step(model, step, calibration, progress=progress)
        records.append(record)
        notes += caught
        say(f"step {i + 1}/{len(steps)} ({step.method}): {record['summary']}")
    return model, records, notes
