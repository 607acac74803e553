"""Recover a pruned decoder LLM by logit distillation from its dense model on text.

``distill(student, teacher, tokens, max_seconds=900)`` trains the pruned ``student`` (in
place, AdamW on all its parameters) to match the next-token distributions of the unpruned
``teacher`` on windows of ``tokens`` (calibration text). Per batch of windows the loss is::

    (1 - alpha_ce) * T^2 * mean over tokens of KL(softmax(teacher / T) || softmax(student / T))
      + alpha_ce * cross-entropy of the student's next-token predictions on the text

Everything but the data layout is :mod:`prunekit.recovery`'s: the loss is a
:class:`~prunekit.recovery.Distillation` (``mode="logits"``; the teacher runs in eval mode
without gradients, on a reference: it is never copied), the loop is
:func:`~prunekit.recovery.finetune` (progress bar, ``max_seconds`` / ``max_steps``, warm-up
then a cosine fitted to the time budget, gradient clipping). The teacher runs in fp32:
bf16 autocast of the teacher was measured on SmolLM2-135M (AVX512-BF16 CPU) at a per-token
KL of 0.31 nats between its logits and the fp32 ones (98.3 % argmax agreement), as large as
the gap distillation closes, so it is not offered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..recovery import Distillation, finetune
from ..recovery.losses import logits_of

__all__ = ["DistillResult", "SEQ_LEN", "distill", "next_token_loss"]

SEQ_LEN = 512
"""Default window length for a 1-D token stream."""


@dataclass
class DistillResult:
    """What :func:`distill` returns.

    Attributes:
        steps: optimizer steps taken.
        tokens: tokens the student was trained on (``steps`` batches of windows).
        seconds: wall time of the whole call (set-up included).
        losses: the loss of every step, in order (the loss curve).
        stopped_by: ``"max_seconds"`` or ``"max_steps"`` when that budget ended training,
            ``None`` when every epoch ran.
        windows: windows available per epoch.
        settings: the call's settings (JSON-serialisable).
    """

    steps: int
    tokens: int
    seconds: float
    losses: list[float]
    stopped_by: str | None
    windows: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        """Optimizer steps per wall second."""
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict (``steps_per_second`` included)."""
        return {**asdict(self), "steps_per_second": self.steps_per_second}


def next_token_loss(output: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of ``output``'s logits at position ``i`` against token ``i + 1`` of
    ``batch["input_ids"]`` (the causal-LM loss; the last position has no target).

    Example:
        >>> import torch
        >>> logits = torch.zeros(1, 3, 4)
        >>> round(float(next_token_loss(logits, {"input_ids": torch.tensor([[0, 1, 2]])})), 4)
        1.3863
    """
    logits = logits_of(output)[:, :-1]
    target = batch["input_ids"][:, 1:].to(logits.device)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1))


def _windows(tokens: torch.Tensor, seq_len: int | None) -> torch.Tensor:
    """``tokens`` as ``(W, L)`` windows: a 1-D stream is cut, 2-D windows are kept."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() not in (1, 2):
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ConfigError(
            f"distill: tokens must be a 1-D token stream or (N, L) windows of token ids, got "
            f"{shape}; pass load_text(...) or calibration_batch(...)"
        )
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ConfigError(f"distill: tokens must be integer token ids, got dtype {tokens.dtype}")
    if tokens.dim() == 2:
        if seq_len is not None and seq_len != tokens.shape[1]:
            raise ConfigError(
                f"distill: seq_len={seq_len} but the windows are {tokens.shape[1]} tokens long; "
                "pass seq_len=None (use them as they are) or a 1-D stream to cut"
            )
        return tokens.long()
    length = SEQ_LEN if seq_len is None else seq_len
    if tokens.numel() < length:
        raise ConfigError(
            f"distill: the stream has {tokens.numel()} tokens, fewer than one window of "
            f"seq_len={length}; pass a shorter seq_len or more text"
        )
    count = tokens.numel() // length
    return tokens[: count * length].long().view(count, length)


def _check(student: nn.Module, teacher: nn.Module, windows: torch.Tensor, **kw: Any) -> None:
    """Reject settings that cannot work, naming the value and the fix."""
    if not isinstance(student, nn.Module) or not isinstance(teacher, nn.Module):
        raise ConfigError(
            f"distill: student and teacher must be nn.Modules, got {type(student).__name__} "
            f"and {type(teacher).__name__}"
        )
    teacher_params = {p.data_ptr() for p in teacher.parameters()}
    shared = [n for n, p in student.named_parameters() if p.data_ptr() in teacher_params]
    if student is teacher or shared:
        raise ConfigError(
            f"distill: the student shares parameters with the teacher ({shared[:3]}); keep the "
            "dense model as the teacher and prune a copy (copy.deepcopy before pruning)"
        )
    for name in ("batch_size", "epochs", "seq_len", "warmup_steps"):
        value, least = kw[name], 0 if name == "warmup_steps" else 1
        if value is None and name == "seq_len":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"distill: {name}={value!r} must be an int >= {least}")
    for name in ("temperature", "lr"):
        if isinstance(kw[name], bool) or not isinstance(kw[name], (int, float)) or kw[name] <= 0:
            raise ConfigError(f"distill: {name}={kw[name]!r} must be a number > 0")
    alpha = kw["alpha_ce"]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ConfigError(
            f"distill: alpha_ce={alpha!r} must be in [0, 1] (0: pure distillation, "
            "1: plain next-token training)"
        )
    get_embeddings = getattr(student, "get_input_embeddings", None)
    vocab = getattr(get_embeddings() if callable(get_embeddings) else None, "num_embeddings", None)
    if vocab is not None and (int(windows.max()) >= vocab or int(windows.min()) < 0):
        raise ConfigError(
            f"distill: token ids span [{int(windows.min())}, {int(windows.max())}] but the "
            f"student's vocabulary has {vocab} entries; tokenise with the student's tokenizer"
        )


def distill(  # noqa: PLR0913  (the keyword API of issue #18)
    student: nn.Module,
    teacher: nn.Module,
    tokens: torch.Tensor,
    *,
    seq_len: int | None = None,
    batch_size: int = 1,
    lr: float = 1e-4,
    weight_decay: float = 0.0,
    warmup_steps: int = 2,
    lr_schedule: str = "cosine",
    grad_clip: float | None = 1.0,
    temperature: float = 1.0,
    alpha_ce: float = 0.0,
    max_seconds: float | None = 900.0,
    max_steps: int | None = None,
    epochs: int = 1,
    gradient_checkpointing: bool = False,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> DistillResult:
    """Distil ``teacher``'s next-token distributions into the pruned ``student``, in place.

    Args:
        student: the pruned causal LM (Hugging Face style: called with ``input_ids=``,
            returns ``.logits`` of shape ``(N, L, vocab)``); trained in place with AdamW.
        teacher: the dense model; only read (eval mode, no gradients, flags restored).
        tokens: a 1-D token stream (cut into ``seq_len`` windows) or ``(N, L)`` windows,
            from calibration text only (never the evaluation text).
        seq_len: window length for a stream (default :data:`SEQ_LEN`); ``None`` or ``L``
            for windows.
        batch_size: windows per optimizer step.
        lr: AdamW's peak learning rate.
        weight_decay: AdamW's decay of weight matrices.
        warmup_steps: steps of linear warm-up before the schedule.
        lr_schedule: a :func:`prunekit.recovery.available_lr_schedules` name; under
            ``max_seconds`` it spans the steps the time budget is expected to allow.
        grad_clip: clip the global gradient norm to this (``None``: no clipping).
        temperature: the softmax temperature ``T`` of the distillation term.
        alpha_ce: weight of the next-token cross-entropy on the text; ``1 - alpha_ce``
            weighs the distillation term.
        max_seconds: stop before a step that would end later than this (wall seconds from
            the call); ``None``: no time limit.
        max_steps: stop after this many steps; ``None``: no step limit.
        epochs: passes over the windows (shuffled by ``seed``) at most.
        gradient_checkpointing: recompute activations in the backward pass (less memory,
            about a third more compute); needs ``student.gradient_checkpointing_enable``.
        device: where to train (default the student's device, else CUDA if available).
        seed: window order and PyTorch's global seed.
        progress: show a tqdm progress bar (steps, loss).

    Returns:
        A :class:`DistillResult` (steps, tokens, seconds, loss curve).

    Raises:
        ConfigError: a setting is out of range, the student shares weights with the
            teacher, or the tokens do not fit the student's vocabulary.

    Example:
        >>> import copy, torch, transformers
        >>> cfg = transformers.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
        ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
        >>> teacher = transformers.LlamaForCausalLM(cfg)
        >>> student = copy.deepcopy(teacher)
        >>> res = distill(student, teacher, torch.arange(64) % 32, seq_len=16, max_steps=2,
        ...               progress=False)
        >>> res.steps, res.tokens, res.stopped_by
        (2, 32, 'max_steps')
    """
    windows = _windows(tokens, seq_len)
    settings: dict[str, Any] = dict(
        seq_len=windows.shape[1], batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        warmup_steps=warmup_steps, lr_schedule=lr_schedule, grad_clip=grad_clip,
        temperature=temperature, alpha_ce=alpha_ce, max_seconds=max_seconds,
        max_steps=max_steps, epochs=epochs, gradient_checkpointing=gradient_checkpointing,
        seed=seed,
    )  # fmt: skip
    _check(student, teacher, windows, **{**settings, "seq_len": seq_len})
    order = torch.randperm(windows.shape[0], generator=torch.Generator().manual_seed(seed))
    batches = [
        {"input_ids": windows[order[i : i + batch_size]]}
        for i in range(0, windows.shape[0], batch_size)
    ]
    kd = Distillation(teacher, temperature=float(temperature), alpha=1.0 - float(alpha_ce))
    with _checkpointing(student, gradient_checkpointing):
        res = finetune(
            student, batches, loss_fn=next_token_loss, optimizer="adamw", lr=lr,
            weight_decay=weight_decay, epochs=epochs, lr_schedule=lr_schedule,
            warmup=warmup_steps / len(batches), grad_clip=grad_clip, device=device,
            progress=progress, distill=kd, seed=seed, restore_best=False,
            inputs=lambda b: {"input_ids": b["input_ids"], "use_cache": False},
            max_steps=max_steps, max_seconds=max_seconds,
        )  # fmt: skip
    seen = sum(batches[i % len(batches)]["input_ids"].numel() for i in range(res.steps))
    return DistillResult(
        res.steps, seen, res.seconds, res.step_losses, res.stopped_by, windows.shape[0], settings
    )


class _checkpointing:
    """Turn on Hugging Face activation (gradient) checkpointing for the call, restore it after."""

    def __init__(self, model: nn.Module, on: bool) -> None:
        self.model, self.on, self.switch = model, on, ""

    def __enter__(self) -> None:
        if not self.on or getattr(self.model, "is_activation_checkpointing", False):
            return
        for prefix in ("activation_checkpointing", "gradient_checkpointing"):
            if callable(getattr(self.model, f"{prefix}_enable", None)):
                self.switch = prefix
                getattr(self.model, f"{prefix}_enable")()
                return
        raise ConfigError(
            f"distill: gradient_checkpointing=True but {type(self.model).__name__} has no "
            "gradient_checkpointing_enable(); pass gradient_checkpointing=False"
        )

    def __exit__(self, *exc: object) -> None:
        if self.switch:
            getattr(self.model, f"{self.switch}_disable")()
