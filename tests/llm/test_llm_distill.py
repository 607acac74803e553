"""Logit distillation of a pruned decoder LLM (prunekit.llm.distill): the loss falls, budgets
stop it, the teacher is only read, hand-computed losses; tiny random LLaMA only."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.llm import distill, next_token_loss, prune_blockwise
from prunekit.recovery import kd_loss
from tests.llm.tiny import TINY_VOCAB, make_tiny_llama


def _stream(n: int = 2048, seed: int = 0) -> torch.Tensor:
    """A token stream with structure to learn: a noisy repeating pattern."""
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(n) * 7 % TINY_VOCAB
    noise = torch.randint(0, TINY_VOCAB, (n,), generator=g)
    return torch.where(torch.rand(n, generator=g) < 0.2, noise, base)


def _kl(student: nn.Module, teacher: nn.Module, windows: torch.Tensor) -> float:
    with torch.no_grad():
        return float(kd_loss(student(windows).logits, teacher(windows).logits, 1.0))


def _pruned(teacher: nn.Module) -> nn.Module:
    calib = _stream(256, seed=3).view(8, 32)
    return prune_blockwise(
        copy.deepcopy(teacher), calib, criterion="magnitude", target=0.4, inplace=True
    ).model


def test_distillation_lowers_the_kl_of_a_pruned_model() -> None:
    teacher = make_tiny_llama(initializer_range=0.2)  # peaked next-token distributions
    student = _pruned(teacher)
    was_training = student.training
    held_out = _stream(256, seed=9).view(8, 32)
    before = _kl(student, teacher, held_out)
    res = distill(
        student, teacher, _stream(256, seed=5).view(8, 32), batch_size=8, lr=3e-3, epochs=12,
        warmup_steps=0, progress=False,
    )  # fmt: skip
    assert res.steps == 12 and len(res.losses) == 12 and res.stopped_by is None
    assert res.tokens == 12 * 8 * 32 and res.windows == 8
    assert res.losses[-1] < 0.8 * res.losses[0], res.losses  # the same batch every step
    after = _kl(student, teacher, held_out)
    assert after < 0.9 * before, (before, after)  # and on windows it never saw
    assert student.training is was_training  # flags restored by finetune
    assert res.to_dict()["steps_per_second"] > 0


def test_teacher_is_unchanged(tiny_llama: nn.Module) -> None:
    tiny_llama.train()
    state = {k: v.clone() for k, v in tiny_llama.state_dict().items()}
    student = _pruned(tiny_llama)
    distill(student, tiny_llama, _stream(512), seq_len=32, max_steps=3, lr=1e-2, progress=False)
    assert all(torch.equal(v, tiny_llama.state_dict()[k]) for k, v in state.items())
    assert tiny_llama.training  # its mode is restored
    assert all(p.grad is None for p in tiny_llama.parameters())
    assert not any(p.data_ptr() in {q.data_ptr() for q in student.parameters()}
                   for p in tiny_llama.parameters())  # fmt: skip


def test_identical_student_has_zero_kl_and_ce_mixes_by_hand(tiny_llama: nn.Module) -> None:
    student = copy.deepcopy(tiny_llama)
    res = distill(student, tiny_llama, _stream(512), seq_len=32, max_steps=2, progress=False)
    assert max(res.losses) < 1e-5
    # alpha_ce=0.5: the first step's loss is 0.5 * KL (0) + 0.5 * next-token CE of the
    # first batch of windows (the seed's permutation), before any update
    student = copy.deepcopy(tiny_llama)
    windows = _stream(512).view(16, 32)
    first = windows[torch.randperm(16, generator=torch.Generator().manual_seed(0))[:2]]
    with torch.no_grad():
        ce = float(next_token_loss(tiny_llama(first), {"input_ids": first}))
    res = distill(
        student, tiny_llama, windows, batch_size=2, alpha_ce=0.5, max_steps=1, progress=False
    )
    assert res.losses[0] == pytest.approx(0.5 * ce, rel=1e-4)


def test_max_seconds_stops_before_the_limit(tiny_llama: nn.Module) -> None:
    student = copy.deepcopy(tiny_llama)

    def slow(module: nn.Module, args: Any) -> None:
        time.sleep(0.3)

    student.register_forward_pre_hook(slow)
    res = distill(student, tiny_llama, _stream(), seq_len=16, max_seconds=1.5, progress=False)
    assert res.stopped_by == "max_seconds"
    assert 1 <= res.steps <= 5 < res.windows
    assert res.seconds < 1.5 + 0.6  # it stops before a step that would end late


def test_gradient_checkpointing_is_restored(tiny_llama: nn.Module) -> None:
    student = copy.deepcopy(tiny_llama)
    res = distill(
        student, tiny_llama, _stream(256), seq_len=32, max_steps=1, gradient_checkpointing=True,
        progress=False,
    )  # fmt: skip
    assert res.steps == 1 and not student.is_activation_checkpointing


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, r"batch_size=0 must be an int >= 1"),
        ({"temperature": 0.0}, r"temperature=0.0 must be a number > 0"),
        ({"alpha_ce": 1.5}, r"alpha_ce=1.5 must be in \[0, 1\]"),
        ({"lr": -1.0}, r"lr=-1.0 must be a number > 0"),
        ({"max_steps": 0}, r"max_steps=0 must be an int >= 1"),
        ({"max_seconds": 0.0}, r"max_seconds=0.0 must be a number > 0"),
        ({"seq_len": 16, "tokens": torch.zeros(4, 32, dtype=torch.long)}, r"seq_len=16 but"),
        ({"seq_len": 4096}, r"fewer than one window of seq_len=4096"),
        ({"tokens": torch.zeros(2, 2, 2, dtype=torch.long)}, r"got \(2, 2, 2\)"),
        ({"tokens": torch.zeros(64)}, r"integer token ids, got dtype torch.float32"),
        ({"tokens": torch.full((64,), TINY_VOCAB)}, r"span \[61, 61\].*61 entries"),
    ],
)
def test_bad_arguments_raise_config_errors(
    tiny_llama: nn.Module, kwargs: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {"tokens": _stream(256), "seq_len": 32, "progress": False, **kwargs}
    tokens = args.pop("tokens")
    with pytest.raises(ConfigError, match=match):
        distill(copy.deepcopy(tiny_llama), tiny_llama, tokens, **args)


def test_student_sharing_the_teachers_weights_is_refused(tiny_llama: nn.Module) -> None:
    with pytest.raises(ConfigError, match="prune a copy"):
        distill(tiny_llama, tiny_llama, _stream(256), seq_len=32, progress=False)
