"""generation_speed runs the prefill + cached decode protocol (timings are not asserted)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.evaluation import generation_speed
from tests.llm.tiny import make_tiny_llama


def test_generation_speed_reports_both_phases() -> None:
    model = make_tiny_llama().train()
    speed = generation_speed(model, prompt_tokens=12, new_tokens=5, repeats=3, threads=1)
    assert speed.prompt_tokens == 12 and speed.new_tokens == 5 and speed.repeats == 3
    assert speed.threads == 1 and speed.warmup == 1
    assert speed.prefill_tokens_per_s > 0 and speed.decode_tokens_per_s > 0
    assert speed.decode_ms_per_token == pytest.approx(1e3 / speed.decode_tokens_per_s)
    assert set(speed.to_dict()) >= {"prefill_tokens_per_s", "decode_tokens_per_s"}
    assert model.training  # restored


def test_cached_decode_follows_the_greedy_continuation() -> None:
    """The timed loop generates what generate() would: the KV cache is used correctly."""
    model, prompt = make_tiny_llama(), torch.tensor([3, 14, 15, 9, 26])
    calls: list[torch.Tensor] = []
    hook = model.register_forward_pre_hook(
        lambda m, args, kwargs: calls.append(kwargs["input_ids"]), with_kwargs=True
    )
    generation_speed(model, prompt=prompt, new_tokens=4, repeats=1, warmup=0)
    hook.remove()
    fed = torch.cat([c[0] for c in calls[1:]])  # the decode steps' single tokens
    with torch.no_grad():
        out = model.generate(prompt[None], max_new_tokens=4, do_sample=False)
    assert torch.equal(fed, out[0, prompt.numel() : prompt.numel() + 4])


def test_generation_speed_needs_a_cache_interface() -> None:
    with pytest.raises(ConfigError, match="past_key_values"):
        generation_speed(nn.Linear(3, 3))
    with pytest.raises(ConfigError, match="new_tokens"):
        generation_speed(make_tiny_llama(), new_tokens=0)
