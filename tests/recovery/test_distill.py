"""Distillation: KD loss by hand, feature matching with width projections, embedding mode."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from recovery_support import digits_batches, trained_cnn
from torch import nn

import prunekit
from prunekit.errors import ConfigError, RecoveryError
from prunekit.recovery import Distillation, finetune, kd_loss


def test_kd_loss_by_hand() -> None:
    s, t, temp = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), 2.0
    ps = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]
    pt = ps[::-1]
    kl = sum(p * math.log(p / q) for p, q in zip(pt, ps))
    assert float(kd_loss(s, t, temp)) == pytest.approx(temp**2 * kl)
    # sequence logits (N, L, C): every position is a sample of the batch mean
    seq_s, seq_t = torch.stack([s, t], 1), torch.stack([t, t], 1)
    assert float(kd_loss(seq_s, seq_t, temp)) == pytest.approx(temp**2 * kl / 2)


def test_alpha_mixes_distillation_and_task_loss() -> None:
    teacher = nn.Linear(3, 4)
    x = torch.randn(6, 3)
    student_out = torch.randn(6, 4)
    kd = float(kd_loss(student_out, teacher(x).detach(), 3.0))
    mixed = Distillation(teacher, temperature=3.0, alpha=0.25)
    got = mixed.loss(student_out, x, (x, None), lambda: torch.tensor(2.0))
    assert float(got) == pytest.approx(0.25 * kd + 0.75 * 2.0, rel=1e-5)

    def no_labels() -> torch.Tensor:
        raise AssertionError("alpha=1 needs no task loss")

    pure = Distillation(teacher, temperature=3.0, alpha=1.0)
    assert float(pure.loss(student_out, x, (x, None), no_labels)) == pytest.approx(kd, rel=1e-5)


def test_feature_matching_same_shape_is_plain_mse() -> None:
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    student = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    kd = Distillation(teacher, alpha=1.0, features={"0": "0"}, feature_weight=2.0)
    x = torch.randn(4, 3)
    with kd.attach(student):
        assert kd.setup(student, x, (x,)) == []
        out = student(x)
        got = kd.loss(out, x, (x,), lambda: torch.tensor(0.0))
    want = kd_loss(out, teacher(x), 4.0) + 2.0 * ((student[0](x) - teacher[0](x)) ** 2).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert not kd._captured  # hooks removed, captures cleared


def test_pruned_student_gets_a_learned_channel_projection() -> None:
    teacher = trained_cnn()
    student = prunekit.prune(teacher, torch.zeros(1, 1, 8, 8), ratio=0.5).model
    kd = Distillation(teacher, features={"conv3": "conv3"}, alpha=0.5)
    res = finetune(
        student, digits_batches(128, limit=256), epochs=1, lr=0.01, distill=kd, progress=False
    )
    proj = kd.projections_["conv3"]
    assert isinstance(proj, nn.Module) and tuple(proj.linear.weight.shape) == (32, 16)
    assert proj.dim == 1  # the channel dim of (N, C, H, W)
    assert math.isfinite(res.history[0].train_loss)
    assert proj.linear.weight.grad is not None  # trained with the student


def test_bad_feature_pairs_raise_clear_errors() -> None:
    teacher = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    student = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    bad = Distillation(teacher, features={"missing": "0"})
    with pytest.raises(ConfigError, match="'missing'.*valid names"), bad.attach(student):
        pass  # pragma: no cover
    x = torch.randn(2, 3)
    kd = Distillation(teacher, features={"0": "1"})  # (2, 4) vs (2, 2): width projection
    with kd.attach(student):
        assert len(kd.setup(student, x, (x,))) == 1
    conv_t, conv_s = nn.Conv2d(1, 4, 3), nn.Conv2d(1, 2, 1)  # channels and size differ
    conv_student, kd = (
        nn.Sequential(conv_s),
        Distillation(nn.Sequential(conv_t), features={"0": "0"}),
    )
    with pytest.raises(RecoveryError, match="one non-batch dim"), kd.attach(conv_student):
        kd.setup(conv_student, torch.randn(1, 1, 5, 5), None)
    assert not conv_s._forward_hooks  # removed on the error too
    with pytest.raises(ConfigError, match="alpha=2"):
        Distillation(teacher, alpha=2)
    with pytest.raises(ConfigError, match="mode='hidden'"):
        Distillation(teacher, mode="hidden")


class Encoder(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, hidden)
        self.mix = nn.Linear(hidden, hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        return {"last_hidden_state": torch.tanh(self.mix(self.emb(input_ids)))}


def test_embedding_mode_cosine_distillation_aligns_an_encoder() -> None:
    torch.manual_seed(0)
    teacher, student = Encoder(8), Encoder(6)
    ids = torch.randint(0, 20, (32, 5))
    batches = [{"input_ids": ids, "attention_mask": torch.ones_like(ids)}]
    kd = Distillation(teacher, mode="embedding", alpha=1.0)
    res = finetune(
        student, batches, epochs=40, optimizer="adam", lr=0.01, distill=kd, progress=False
    )
    assert "embedding" in kd.projections_  # hidden 6 -> 8
    assert res.history[-1].train_loss < 0.5 * res.history[0].train_loss


def test_distillation_changes_the_result_of_the_same_seeded_run() -> None:
    teacher = trained_cnn()
    pruned = prunekit.prune(teacher, torch.zeros(1, 1, 8, 8), ratio=0.5).model
    data, val = digits_batches(128, limit=384), digits_batches(512, split="val")
    plain, distilled = copy.deepcopy(pruned), copy.deepcopy(pruned)
    r1 = finetune(plain, data, val_data=val, epochs=2, lr=0.01, progress=False, restore_best=False)
    r2 = finetune(distilled, data, val_data=val, epochs=2, lr=0.01, progress=False, restore_best=False,
                  distill=Distillation(teacher, temperature=4.0, alpha=0.9))  # fmt: skip
    assert r1.initial_metric == r2.initial_metric
    assert not torch.equal(plain.fc.weight, distilled.fc.weight)
    assert r1.history[-1].train_loss != r2.history[-1].train_loss
