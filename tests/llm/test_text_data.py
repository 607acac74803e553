"""The built-in text dataset: split by whole work (never overlapping), token streams, windows
and calibration batches. A character tokenizer stands in for a real one (fast, exact)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from prunekit.data import (
    TextSource,
    available_text_datasets,
    calibration_batch,
    load_dataset,
    load_text,
    register_text_dataset,
    text_works,
    token_windows,
)
from prunekit.data.shakespeare import (
    CALIBRATION_WORKS,
    EVALUATION_WORKS,
    read_work,
    shakespeare_folder,
)
from prunekit.errors import ConfigError, DataError


class CharTokenizer:
    """One token per character (its code point); records whether special tokens were asked."""

    def __init__(self) -> None:
        self.special: list[bool] = []

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, Any]:
        self.special.append(add_special_tokens)
        return {"input_ids": [ord(c) for c in text]}


def test_shakespeare_split_is_by_work_and_disjoint() -> None:
    assert "shakespeare" in available_text_datasets()
    calibration = text_works("shakespeare", split="calibration")
    evaluation = text_works("shakespeare", split="evaluation")
    assert set(calibration).isdisjoint(evaluation)
    assert evaluation == ("coriolanus", "henry_v", "twelfth_night", "winters_tale")
    # every modern-spelling work of the package is used exactly once; no Folio duplicate
    modern = sorted(p.name.removesuffix("_gut.txt") for p in shakespeare_folder().glob("*_gut.txt"))
    assert sorted(calibration + evaluation) == modern and len(modern) == 42
    assert calibration == CALIBRATION_WORKS and evaluation == EVALUATION_WORKS


def test_no_line_of_an_evaluation_play_is_in_the_calibration_text() -> None:
    """The two splits share no long line: the held-out text is really held out."""
    held_out = "\n".join(read_work(w) for w in EVALUATION_WORKS)
    calib = "\n".join(read_work(w) for w in CALIBRATION_WORKS)
    long_lines = {line.strip() for line in held_out.splitlines() if len(line.strip()) > 50}
    assert len(long_lines) > 1000
    shared = long_lines & {line.strip() for line in calib.splitlines()}
    assert len(shared) < 0.01 * len(long_lines)  # stock phrases at most


def test_load_text_tokenises_without_special_tokens() -> None:
    tok = CharTokenizer()
    tokens = load_text("shakespeare", tokenizer=tok, split="evaluation")
    assert tokens.numel() == sum(len(read_work(w).strip()) + 2 for w in EVALUATION_WORKS)
    assert tok.special == [False] * len(EVALUATION_WORKS)


def test_load_text_concatenates_works_in_order_with_a_blank_line() -> None:
    texts = {"w1": "alpha  ", "w2": "beta", "w3": "gamma"}
    register_text_dataset(
        "tiny-corpus", TextSource(("w1", "w2"), ("w3",), read=texts.__getitem__), override=True
    )
    tokens = load_text("tiny_corpus", tokenizer=CharTokenizer(), split="calibration")
    assert tokens.dtype == torch.int64 and tokens.dim() == 1
    assert "".join(map(chr, tokens.tolist())) == "alpha\n\nbeta\n\n"
    with pytest.raises(ConfigError, match="split='test'"):
        load_text("tiny_corpus", tokenizer=CharTokenizer(), split="test")  # type: ignore[arg-type]


def test_a_work_in_both_splits_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"works \['b'\] are in both"):
        register_text_dataset("overlap", TextSource(("a", "b"), ("b",), read=str))


def test_load_dataset_points_text_names_to_load_text() -> None:
    with pytest.raises(DataError, match="load_text"):
        load_dataset("shakespeare")


def test_token_windows_and_calibration_batches() -> None:
    tokens = torch.arange(103)
    windows = token_windows(tokens, seq_len=10)
    assert windows.shape == (10, 10) and windows[3].tolist() == list(range(30, 40))
    assert token_windows(tokens, seq_len=10, max_windows=4).shape == (4, 10)
    batch = calibration_batch(tokens, num_sequences=6, seq_len=10, seed=3)
    assert batch.shape == (6, 10)
    starts = sorted(int(row[0]) for row in batch)
    assert len(set(starts)) == 6 and all(s % 10 == 0 for s in starts)  # distinct grid windows
    for row in batch:
        assert row.tolist() == list(range(int(row[0]), int(row[0]) + 10))
    assert torch.equal(batch, calibration_batch(tokens, num_sequences=6, seq_len=10, seed=3))
    assert not torch.equal(batch, calibration_batch(tokens, num_sequences=6, seq_len=10, seed=4))


def test_window_errors_name_the_sizes() -> None:
    with pytest.raises(DataError, match="num_sequences=11 .* holds 10"):
        calibration_batch(torch.arange(103), num_sequences=11, seq_len=10)
    with pytest.raises(DataError, match="fewer than one window"):
        token_windows(torch.arange(5), seq_len=10)
    with pytest.raises(ConfigError, match="integer"):
        token_windows(torch.rand(50), seq_len=10)
    with pytest.raises(ConfigError, match="seq_len"):
        calibration_batch(torch.arange(50), num_sequences=2, seq_len=0)
