"""The recovery stage of an LLM recipe: a short logit distillation from the dense model into
the pruned one (:func:`prunekit.llm.distill`) on the calibration works (never the held-out
works the run is evaluated on)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data.text import calibration_batch
from ..errors import ConfigError
from ..recipe.llm import LLMRecipe
from .llm_eval import RecipeTexts

__all__ = ["distill_stage", "distill_summary"]


def _tokens(recipe: LLMRecipe, texts: RecipeTexts) -> tuple[torch.Tensor, int | None]:
    """``(tokens, seq_len)`` for :func:`prunekit.llm.distill`: ``sequences`` windows drawn
    by the data seed, or the whole calibration stream cut into ``seq_len`` windows."""
    spec, data = recipe.recovery.distill, recipe.data
    assert spec is not None
    length = spec.seq_len or data.seq_len
    if spec.sequences is None:
        return texts.calibration_stream, length
    windows = calibration_batch(texts.calibration_stream, num_sequences=spec.sequences,
                                seq_len=length, seed=data.seed)  # fmt: skip
    return windows, None


def distill_summary(done: dict[str, Any]) -> str:
    """One line: steps, why it stopped, tokens, time and the loss at the start and end."""
    losses = done.get("losses") or []
    loss = f", loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else ""
    why = f" (stopped by {done['stopped_by']})" if done.get("stopped_by") else ""
    return (
        f"logit distillation: {done.get('steps', 0)} steps{why} on {done.get('tokens', 0):,} "
        f"calibration tokens in {done.get('seconds', 0.0):.1f} s{loss}"
    )


def distill_stage(
    student: nn.Module,
    teacher: nn.Module,
    recipe: LLMRecipe,
    texts: RecipeTexts,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Distil ``teacher`` into ``student`` in place; the
    :class:`~prunekit.llm.DistillResult` as a dict, with a one-line ``summary``.

    Raises:
        ConfigError: The recipe has no ``recovery.distill`` section, or a setting is out
            of range for :func:`prunekit.llm.distill`.
    """
    spec = recipe.recovery.distill
    if spec is None:
        raise ConfigError("distill_stage: the recipe has no recovery.distill section")
    from ..llm import distill

    tokens, seq_len = _tokens(recipe, texts)
    result = distill(student, teacher, tokens, seq_len=seq_len, progress=progress,
                     **spec.call_kwargs())  # fmt: skip
    done = result.to_dict()
    return {**done, "summary": distill_summary(done)}
