"""Perplexity and next-token agreement against hand computations on a tiny random LLaMA.

The reference for every window protocol is the loop of Hugging Face's "Perplexity of
fixed-length models" guide, written out here independently of prunekit: labels set to -100
on the context part, the model's own shifted mean loss times its number of scored tokens.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunekit.errors import ConfigError, DataError
from prunekit.evaluation import next_token_agreement, perplexity, window_plan
from tests.llm.tiny import TINY_VOCAB, make_tiny_llama


def stream(length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, TINY_VOCAB, (length,), generator=torch.Generator().manual_seed(seed))


def hf_guide_perplexity(model: nn.Module, tokens: torch.Tensor, seq_len: int, stride: int) -> float:
    """The Hugging Face guide's sliding-window loop (for streams that end on a full window)."""
    ids = tokens[None]
    total, count, prev_end = 0.0, 0, 0
    for begin in range(0, ids.shape[1], stride):
        end = min(begin + seq_len, ids.shape[1])
        trg_len = end - prev_end
        window = ids[:, begin:end]
        labels = window.clone()
        labels[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids=window, labels=labels).loss
        scored = int((labels[:, 1:] != -100).sum())
        total += float(loss) * scored
        count += scored
        prev_end = end
        if end == ids.shape[1]:
            break
    return math.exp(total / count)


def direct_perplexity(model: nn.Module, tokens: torch.Tensor, seq_len: int) -> float:
    """exp(mean NLL) over non-overlapping windows, computed with log_softmax and gather."""
    nll = []
    for start in range(0, tokens.numel() - seq_len + 1, seq_len):
        window = tokens[start : start + seq_len]
        with torch.no_grad():
            logp = F.log_softmax(model(input_ids=window[None]).logits[0].double(), dim=-1)
        nll.append(-logp[:-1].gather(1, window[1:, None]).squeeze(1))
    return math.exp(float(torch.cat(nll).mean()))


def test_perplexity_equals_exp_of_mean_nll_computed_directly() -> None:
    model, tokens = make_tiny_llama(), stream(3 * 16 + 5)  # a 5-token tail that is not scored
    result = perplexity(model, tokens, seq_len=16, progress=False)
    assert result.windows == 3 and result.tokens == 3 * 15 and result.stride == 16
    assert result.perplexity == pytest.approx(direct_perplexity(model, tokens, 16), rel=1e-5)
    assert float(result) == result.perplexity
    assert result.mean_nll == pytest.approx(math.log(result.perplexity))
    assert 1.0 < result.perplexity < 3 * TINY_VOCAB  # a random model: near-uniform


@pytest.mark.parametrize("stride", [16, 8, 5, 1])
def test_perplexity_matches_the_hugging_face_sliding_window_loop(stride: int) -> None:
    model, seq_len = make_tiny_llama(), 16
    tokens = stream(seq_len + 6 * stride)  # the windows end exactly on the last token
    result = perplexity(model, tokens, seq_len=seq_len, stride=stride, batch_size=3, progress=False)
    assert result.windows == 7
    expected_tokens = 15 + 6 * (stride if stride < seq_len else seq_len - 1)
    assert result.tokens == expected_tokens
    reference = hf_guide_perplexity(model, tokens, seq_len, stride)
    assert result.perplexity == pytest.approx(reference, rel=1e-5)


def test_batch_size_and_max_windows() -> None:
    model, tokens = make_tiny_llama(), stream(8 * 16)
    one = perplexity(model, tokens, seq_len=16, batch_size=1, progress=False)
    many = perplexity(model, tokens, seq_len=16, batch_size=5, progress=False)
    assert many.perplexity == pytest.approx(one.perplexity, rel=1e-5)
    first = perplexity(model, tokens, seq_len=16, max_windows=2, progress=False)
    assert first.windows == 2 and first.tokens == 30
    assert first.perplexity == pytest.approx(direct_perplexity(model, tokens[:32], 16), rel=1e-5)


def test_every_token_is_scored_once_with_a_small_stride() -> None:
    plan = window_plan(40, seq_len=16, stride=6)
    scored = [start + k for start, first in plan for k in range(first, 16)]
    assert scored == list(range(1, plan[-1][0] + 16))  # no gap, no repeat


def test_plain_module_returning_logits_is_accepted() -> None:
    class Uniform(nn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return torch.zeros(*ids.shape, 7)

    result = perplexity(Uniform(), torch.arange(30) % 7, seq_len=10, progress=False)
    assert result.perplexity == pytest.approx(7.0)


def test_bad_arguments_name_the_fix() -> None:
    model = make_tiny_llama()
    with pytest.raises(ConfigError, match="stride=20 exceeds seq_len=16"):
        perplexity(model, stream(64), seq_len=16, stride=20, progress=False)
    with pytest.raises(DataError, match="fewer than one window"):
        perplexity(model, stream(10), seq_len=16, progress=False)
    with pytest.raises(ConfigError, match="1-D tensor"):
        perplexity(model, stream(64).view(4, 16), seq_len=16, progress=False)
    with pytest.raises(ConfigError, match="batch_size"):
        perplexity(model, stream(64), seq_len=16, batch_size=0, progress=False)

    class NotLM(nn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return ids.float().mean(-1)

    with pytest.raises(ConfigError, match="must map token ids"):
        perplexity(NotLM(), stream(64), seq_len=16, progress=False)


def test_agreement_is_one_for_identical_models_and_lower_for_another() -> None:
    tokens = stream(4 * 16)
    a, b = make_tiny_llama(seed=0), make_tiny_llama(seed=0)
    assert next_token_agreement(a, b, tokens, seq_len=16, progress=False) == 1.0
    other = make_tiny_llama(seed=5)
    value = next_token_agreement(a, other, tokens, seq_len=16, progress=False)
    assert 0.0 <= value < 1.0


def test_agreement_counts_positions_by_hand() -> None:
    """Candidate = reference except that its argmax is forced to 0 in the second half."""
    reference = make_tiny_llama()
    tokens = stream(2 * 16)

    class Masked(nn.Module):
        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            logits = reference(input_ids=input_ids).logits.clone()
            logits[:, 8:, 0] = 1e4
            return logits

    with torch.no_grad():
        ref = reference(input_ids=tokens.view(2, 16)).logits.argmax(-1)
    scored_ref = ref[:, :-1]  # positions 0..14 predict the scored tokens 1..15
    expected = scored_ref[:, :8].numel() + int((scored_ref[:, 8:] == 0).sum())
    value = next_token_agreement(reference, Masked(), tokens, seq_len=16, progress=False)
    assert value == pytest.approx(expected / scored_ref.numel())


def test_agreement_rejects_different_vocabularies() -> None:
    with pytest.raises(ConfigError, match="one vocabulary"):
        next_token_agreement(
            make_tiny_llama(),
            make_tiny_llama(vocab_size=50),
            stream(32) % 50,
            seq_len=16,
            progress=False,
        )


def test_models_are_left_in_their_training_mode() -> None:
    model = make_tiny_llama().train()
    perplexity(model, stream(32), seq_len=16, progress=False)
    assert model.training
