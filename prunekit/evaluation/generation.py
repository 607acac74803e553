"""Generation speed of a causal language model at batch 1: prefill and decode tokens/s.

Protocol: the model runs in eval mode under ``torch.inference_mode`` with a fixed thread
count (restored afterwards). One *run* is a greedy generation by hand with the model's KV
cache: the **prefill** is one forward pass over the ``P``-token prompt (``use_cache=True``),
then **decode** is ``N`` forward passes of one token each (the argmax of the previous step),
reusing the cache. ``warmup`` untimed runs come first, then ``repeats`` timed runs;
each phase's time is the median over the timed runs (robust to scheduler hiccups), and the
throughputs are ``P / prefill`` and ``N / decode`` tokens per second. Sampling, stopping at
EOS and ``generate()``'s own bookkeeping are left out, so the numbers are the model's.

Numbers depend on the machine and its load: compare models within one run on one machine,
and keep timing out of pass/fail tests. The model must be a Hugging Face-style causal LM
(``forward(input_ids=..., cache=..., use_cache=True)`` returning ``logits`` and ``cache``;
``past_key_values`` in transformers releases before the rename).
"""

from __future__ import annotations

import inspect
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.evaluation._runtime import eval_mode, fixed_threads, model_device

__all__ = ["GenerationSpeed", "generation_speed"]


@dataclass(frozen=True)
class GenerationSpeed:
    """Batch-1 generation throughput (see the module docstring).

    Attributes:
        prefill_tokens_per_s: Prompt tokens per second of the prefill pass (median run).
        decode_tokens_per_s: Generated tokens per second of the decode steps (median run).
        prefill_ms: Median prefill time.
        decode_ms_per_token: Median decode time divided by ``new_tokens``.
        prompt_tokens, new_tokens: ``P`` and ``N``.
        repeats, warmup: Timed and untimed runs.
        threads: ``torch.get_num_threads()`` during the measurement.
    """

    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    prefill_ms: float
    decode_ms_per_token: float
    prompt_tokens: int
    new_tokens: int
    repeats: int
    warmup: int
    threads: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-``dict`` form (JSON-ready)."""
        return asdict(self)


def _count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"generation_speed: {name} must be an int >= {minimum}, got {value!r}")
    return value


def _prompt(
    model: nn.Module, prompt: torch.Tensor | None, prompt_tokens: int, seed: int
) -> torch.Tensor:
    if prompt is not None:
        if not isinstance(prompt, torch.Tensor) or prompt.dim() != 1 or prompt.numel() < 1:
            raise ConfigError(
                "generation_speed: prompt must be a non-empty 1-D tensor of token ids, got "
                f"{tuple(prompt.shape) if isinstance(prompt, torch.Tensor) else prompt!r}"
            )
        return prompt.long()[None]
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if not isinstance(vocab, int):
        raise ConfigError(
            "generation_speed: the model has no config.vocab_size to draw a random prompt "
            "from; pass prompt= (1-D token ids)"
        )
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (1, _count(prompt_tokens, "prompt_tokens", 1)), generator=gen)


def _cache_argument(model: nn.Module) -> str:
    """The forward argument that takes the KV cache: ``cache`` (transformers >= 5.2x) or
    ``past_key_values`` (older releases)."""
    params = set(inspect.signature(model.forward).parameters)
    for name in ("cache", "past_key_values"):
        if {"input_ids", "use_cache", name} <= params:
            return name
    raise ConfigError(
        f"generation_speed: {type(model).__name__}.forward takes no input_ids / use_cache / "
        "cache (or past_key_values) arguments; it needs a Hugging Face-style causal LM with a "
        "KV cache"
    )


def _one_run(
    model: nn.Module, ids: torch.Tensor, new_tokens: int, cache_arg: str
) -> tuple[float, float]:
    """(prefill seconds, decode seconds) of one greedy generation with the KV cache."""
    sync = torch.cuda.synchronize if ids.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = model(input_ids=ids, use_cache=True)
    step = out.logits[:, -1].argmax(-1, keepdim=True)
    sync()
    prefill = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(new_tokens):
        out = model(input_ids=step, use_cache=True, **{cache_arg: out[cache_arg]})
        step = out.logits[:, -1].argmax(-1, keepdim=True)
    sync()
    return prefill, time.perf_counter() - start


def generation_speed(
    model: nn.Module,
    *,
    prompt: torch.Tensor | None = None,
    prompt_tokens: int = 128,
    new_tokens: int = 32,
    repeats: int = 5,
    warmup: int = 1,
    threads: int | None = None,
    seed: int = 0,
) -> GenerationSpeed:
    """Measure prefill and decode tokens/s at batch 1 (module docstring protocol).

    Args:
        model: A Hugging Face-style causal LM with a KV cache.
        prompt: 1-D prompt token ids; default ``prompt_tokens`` random ids drawn by ``seed``
            from ``model.config.vocab_size`` (speed does not depend on which tokens).
        prompt_tokens: Prompt length when ``prompt`` is not given.
        new_tokens: Decode steps per run.
        repeats: Timed runs (the median is reported).
        warmup: Untimed runs before them.
        threads: ``torch.set_num_threads`` during the measurement; ``None`` keeps the current.
        seed: Seed of the random prompt.

    Returns:
        The :class:`GenerationSpeed`.

    Raises:
        ConfigError: If a count is not a positive int, the prompt is malformed, or the model
            has no KV-cache interface.

    Example:
        >>> speed = generation_speed(model, new_tokens=16, repeats=3)  # doctest: +SKIP
        >>> speed.decode_tokens_per_s > 0  # doctest: +SKIP
        True
    """
    new = _count(new_tokens, "new_tokens", 1)
    runs = _count(repeats, "repeats", 1)
    warm = _count(warmup, "warmup", 0)
    cache_arg = _cache_argument(model)
    ids = _prompt(model, prompt, prompt_tokens, seed).to(model_device(model))
    prefills, decodes = [], []
    with fixed_threads(threads) as used, eval_mode(model), torch.inference_mode():
        for i in range(warm + runs):
            prefill, decode = _one_run(model, ids, new, cache_arg)
            if i >= warm:
                prefills.append(prefill)
                decodes.append(decode)
    pre, dec = statistics.median(prefills), statistics.median(decodes)
    return GenerationSpeed(
        prefill_tokens_per_s=ids.shape[1] / pre,
        decode_tokens_per_s=new / dec,
        prefill_ms=pre * 1e3,
        decode_ms_per_token=dec * 1e3 / new,
        prompt_tokens=int(ids.shape[1]),
        new_tokens=new,
        repeats=runs,
        warmup=warm,
        threads=used,
    )
