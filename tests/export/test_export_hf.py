"""Hugging Face save_pretrained -> from_pretrained of head-pruned models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ExportError
from prunekit.surgery.configs import base_config


class _Config:
    """A config look-alike: ints that name widths, and ``to_dict``."""

    def __init__(self) -> None:
        self.hidden_size = 8
        self.intermediate_size = 16

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


class _FFN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.config = _Config()
        self.up = nn.Linear(8, 16)
        self.down = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.relu(self.up(x)))


def test_the_unpruned_config_is_remembered_across_steps() -> None:
    net = _FFN()
    once = prunekit.prune(net, torch.randn(1, 8), module_ratios={"up": 0.5}).model
    assert once.config.intermediate_size == 8
    twice = prunekit.prune(once, torch.randn(1, 8), module_ratios={"up": 0.5}).model
    assert twice.config.intermediate_size == 4
    assert base_config(twice) == {"hidden_size": 8, "intermediate_size": 16}
    assert base_config(net) is None


def test_save_pretrained_needs_a_hugging_face_model(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="save_pretrained"):
        prunekit.export.save_pretrained(nn.Linear(2, 2), tmp_path)


def test_head_pruned_bert_reloads_with_identical_outputs(tmp_path: Path) -> None:
    import transformers as tf  # part of the test environment (constraints.txt): never skipped

    cfg = tf.BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=16,
    )  # fmt: skip
    torch.manual_seed(0)
    model = tf.BertModel(cfg).eval()
    inputs = {"input_ids": torch.randint(0, 64, (1, 6))}
    ratios = {"*.attention.self.query": 0.5, "*.intermediate.dense": 0.25}
    pruned = prunekit.prune(model, inputs, module_ratios=ratios).model
    assert pruned.encoder.layer[0].attention.self.num_attention_heads == 2
    prunekit.export.save_pretrained(pruned, tmp_path / "bert")
    again = prunekit.export.from_pretrained(tf.AutoModel, tmp_path / "bert")
    with torch.no_grad():
        want = pruned(**inputs).last_hidden_state
        got = again(**inputs).last_hidden_state
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    steps, _ = prunekit.plan.pruning_history(again)
    assert len(steps) == 1
