"""Language-model quality on a token stream: perplexity and next-token agreement.

Windows. A 1-D token stream of ``T`` tokens is read in fixed-length windows of ``seq_len``
tokens starting at ``0, stride, 2*stride, ...`` while a whole window fits (the tail after the
last full window is not scored); ``max_windows`` keeps the first windows only. ``stride``
defaults to ``seq_len`` and may not exceed it.

Scored tokens (the Hugging Face sliding-window definition, "Perplexity of fixed-length
models"): every token is scored at most once, in the first window that holds it as a *new*
token, conditioned on the tokens before it in that window. The first window scores its
positions ``1 .. seq_len-1`` (position 0 has no context); each later window scores only its
last ``stride`` tokens (its first ``seq_len - stride`` tokens are context already scored), or
``seq_len - 1`` when ``stride == seq_len`` (non-overlapping windows: the first token of each
has no context). A smaller stride gives every scored token more context, costs
``seq_len / stride`` times the compute, and gives a lower (better) perplexity.

``perplexity = exp(mean NLL over the scored tokens)``, natural log, computed in float64 from
float32 log-probabilities. :func:`next_token_agreement` compares the greedy (argmax)
predictions of two models at the same scored positions.

Models: a Hugging Face causal LM (called as ``model(input_ids=ids, use_cache=False)``) or any
module mapping ``(B, L)`` token ids to ``(B, L, V)`` logits (a tensor, or an output with
``logits``). Everything runs under ``torch.inference_mode`` in eval mode on the model's device;
training flags are restored afterwards.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm  # type: ignore[import-untyped]

from prunekit.errors import ConfigError, DataError
from prunekit.evaluation._runtime import eval_mode, model_device
from prunekit.outputs import main_output

__all__ = ["PerplexityResult", "next_token_agreement", "perplexity", "window_plan"]


@dataclass(frozen=True)
class PerplexityResult:
    """Perplexity of a model on a token stream (``float(result)`` is the perplexity).

    Attributes:
        perplexity: ``exp(mean_nll)``.
        mean_nll: Mean negative log-likelihood per scored token (nats).
        tokens: Number of scored tokens.
        windows: Number of windows run.
        seq_len, stride: The window protocol (module docstring).
    """

    perplexity: float
    mean_nll: float
    tokens: int
    windows: int
    seq_len: int
    stride: int

    def __float__(self) -> float:
        return self.perplexity

    def to_dict(self) -> dict[str, Any]:
        """Plain-``dict`` form (JSON-ready)."""
        return asdict(self)


def _size(value: object, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {name} must be an int >= 1, got {value!r}")
    return value


def window_plan(
    num_tokens: int, *, seq_len: int, stride: int | None = None, max_windows: int | None = None
) -> list[tuple[int, int]]:
    """``(start, first_scored_offset)`` of every window (the module docstring's protocol).

    Window ``i`` covers ``tokens[start : start + seq_len]`` and scores its offsets
    ``first_scored_offset .. seq_len - 1``.

    Raises:
        ConfigError: If a size is not a positive int or ``stride > seq_len``.
        DataError: If the stream is shorter than one window.

    Example:
        >>> window_plan(10, seq_len=4, stride=2)
        [(0, 1), (2, 2), (4, 2), (6, 2)]
        >>> window_plan(10, seq_len=4)
        [(0, 1), (4, 1)]
    """
    where = "perplexity windows"
    length = _size(seq_len, "seq_len", where)
    step = length if stride is None else _size(stride, "stride", where)
    if step > length:
        raise ConfigError(
            f"{where}: stride={step} exceeds seq_len={length}, which would skip tokens; use "
            "stride <= seq_len"
        )
    if num_tokens < length:
        raise DataError(
            f"{where}: the stream has {num_tokens} tokens, fewer than one window of "
            f"seq_len={length}; use a shorter seq_len or more text"
        )
    starts = range(0, num_tokens - length + 1, step)
    if max_windows is not None:
        starts = starts[: _size(max_windows, "max_windows", where)]
    later = max(length - step, 1)
    return [(start, 1 if i == 0 else later) for i, start in enumerate(starts)]


def _stream(tokens: torch.Tensor, where: str) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ConfigError(
            f"{where}: tokens must be a 1-D tensor of token ids (one stream, e.g. "
            f"prunekit.data.load_text), got {got}"
        )
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ConfigError(f"{where}: tokens must be integer token ids, got dtype {tokens.dtype}")
    return tokens.long()


def _takes_input_ids(model: nn.Module) -> tuple[bool, bool]:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False, False
    return "input_ids" in params, "use_cache" in params


def logits_of(model: nn.Module, ids: torch.Tensor, where: str) -> torch.Tensor:
    """``(B, L, V)`` next-token logits of ``model`` for token ids ``ids`` of shape ``(B, L)``."""
    by_name, cache = _takes_input_ids(model)
    if by_name:
        kwargs: dict[str, Any] = {"use_cache": False} if cache else {}
        out = main_output(model(input_ids=ids, **kwargs))
    else:
        out = main_output(model(ids))
    if out is None or out.dim() != 3 or tuple(out.shape[:2]) != tuple(ids.shape):
        got = None if out is None else tuple(out.shape)
        raise ConfigError(
            f"{where}: the model must map token ids {tuple(ids.shape)} to logits (batch, "
            f"length, vocabulary), it returned {got}"
        )
    return out


def _batches(
    tokens: torch.Tensor, plan: list[tuple[int, int]], seq_len: int, batch_size: int
) -> Iterator[tuple[torch.Tensor, list[int]]]:
    for i in range(0, len(plan), batch_size):
        chunk = plan[i : i + batch_size]
        ids = torch.stack([tokens[s : s + seq_len] for s, _ in chunk])
        yield ids, [offset for _, offset in chunk]


def _scored(logits: torch.Tensor, ids: torch.Tensor, offsets: list[int]) -> Iterator[Any]:
    """Per window: (logits predicting the scored tokens, the scored tokens)."""
    for row, offset in enumerate(offsets):
        yield logits[row, offset - 1 : -1], ids[row, offset:]


def perplexity(
    model: nn.Module,
    tokens: torch.Tensor,
    *,
    seq_len: int = 512,
    stride: int | None = None,
    batch_size: int = 1,
    max_windows: int | None = None,
    progress: bool = True,
) -> PerplexityResult:
    """Perplexity of a causal language model on a token stream (module docstring protocol).

    Args:
        model: A causal LM (Hugging Face, or ``(B, L)`` ids -> ``(B, L, V)`` logits).
        tokens: 1-D token stream (e.g. ``load_text("shakespeare", tokenizer=tok)``).
        seq_len: Window length in tokens.
        stride: Step between window starts, ``1 <= stride <= seq_len``; default ``seq_len``.
        batch_size: Windows per forward pass (logits take ``batch_size * seq_len * V * 4``
            bytes: 100 MB per window for a 49 k vocabulary at 512 tokens).
        max_windows: Score only the first this many windows.
        progress: Show a tqdm progress bar over the windows.

    Returns:
        The :class:`PerplexityResult`.

    Raises:
        ConfigError: If an argument is malformed or the model does not return logits.
        DataError: If the stream is shorter than one window.

    Example:
        >>> vocab = 5
        >>> uniform = lambda ids: torch.zeros(*ids.shape, vocab)
        >>> model = torch.nn.Module()
        >>> model.forward = uniform
        >>> r = perplexity(model, torch.arange(20) % vocab, seq_len=8, progress=False)
        >>> round(r.perplexity, 6), r.tokens, r.windows
        (5.0, 14, 2)
    """
    where = "perplexity"
    stream = _stream(tokens, where)
    plan = window_plan(stream.numel(), seq_len=seq_len, stride=stride, max_windows=max_windows)
    batch = _size(batch_size, "batch_size", where)
    device = model_device(model)
    total_nll, count = 0.0, 0
    with eval_mode(model), torch.inference_mode():
        bar = tqdm(total=len(plan), disable=not progress, unit="window", desc=where)
        for ids, offsets in _batches(stream, plan, seq_len, batch):
            ids = ids.to(device)
            logits = logits_of(model, ids, where)
            for pred, target in _scored(logits, ids, offsets):
                nll = F.cross_entropy(pred.float(), target, reduction="sum")
                total_nll += float(nll.double())
                count += target.numel()
            bar.update(len(offsets))
        bar.close()
    mean = total_nll / count
    step = seq_len if stride is None else stride
    return PerplexityResult(math.exp(mean), mean, count, len(plan), seq_len, step)


def next_token_agreement(
    reference: nn.Module,
    candidate: nn.Module,
    tokens: torch.Tensor,
    *,
    seq_len: int = 512,
    stride: int | None = None,
    batch_size: int = 1,
    max_windows: int | None = None,
    progress: bool = True,
) -> float:
    """Fraction of scored positions where both models predict the same next token (argmax).

    The windows and scored positions are those of :func:`perplexity` with the same
    arguments; ties in the argmax resolve to the lowest token id in both models.

    Args:
        reference: Usually the dense model.
        candidate: Usually the pruned model (same vocabulary).
        tokens: 1-D token stream.
        seq_len, stride, batch_size, max_windows, progress: As in :func:`perplexity`.

    Returns:
        Agreement in ``[0, 1]`` (1.0 for two identical models).

    Raises:
        ConfigError: If an argument is malformed, a model does not return logits, or the
            two vocabularies differ.
        DataError: If the stream is shorter than one window.
    """
    where = "next_token_agreement"
    stream = _stream(tokens, where)
    plan = window_plan(stream.numel(), seq_len=seq_len, stride=stride, max_windows=max_windows)
    batch = _size(batch_size, "batch_size", where)
    same, count = 0, 0
    with eval_mode(reference), eval_mode(candidate), torch.inference_mode():
        bar = tqdm(total=len(plan), disable=not progress, unit="window", desc=where)
        for ids, offsets in _batches(stream, plan, seq_len, batch):
            ref = logits_of(reference, ids.to(model_device(reference)), where)
            cand = logits_of(candidate, ids.to(model_device(candidate)), where)
            if ref.shape[-1] != cand.shape[-1]:
                raise ConfigError(
                    f"{where}: the reference predicts over {ref.shape[-1]} tokens, the "
                    f"candidate over {cand.shape[-1]}; compare models with one vocabulary"
                )
            for row, offset in enumerate(offsets):
                a = ref[row, offset - 1 : -1].argmax(-1).cpu()
                b = cand[row, offset - 1 : -1].argmax(-1).cpu()
                same += int((a == b).sum())
                count += a.numel()
            bar.update(len(offsets))
        bar.close()
    return same / count
