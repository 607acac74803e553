"""What fine-tuning is told (:class:`FinetuneConfig`) and what it returns (:class:`FinetuneResult`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..spec import FINETUNE
from .batches import InputsFn
from .distill import Distillation
from .losses import LossFn
from .noise import NoiseInjection
from .optimizers import OptimizerSpec
from .schedules import get_lr_schedule

__all__ = ["EpochRecord", "FinetuneConfig", "FinetuneResult", "Metric", "Regularizer"]

Regularizer = Callable[[nn.Module], torch.Tensor]
Metric = Callable[[nn.Module], float]


@dataclass
class FinetuneConfig:
    """Every setting of :func:`prunekit.recovery.finetune` (see there for their meaning), validated.

    The defaults of ``optimizer``, ``lr``, ``momentum``, ``epochs`` and ``lr_schedule`` are
    :data:`prunekit.spec.FINETUNE`'s, which the recipe's ``recovery.finetune`` reads too."""

    loss_fn: LossFn | None = None
    optimizer: OptimizerSpec = FINETUNE.optimizer
    lr: float = FINETUNE.lr
    momentum: float = FINETUNE.momentum
    weight_decay: float = 0.0
    epochs: int = FINETUNE.epochs
    lr_schedule: str = FINETUNE.lr_schedule
    warmup: float = 0.0
    grad_clip: float | None = None
    val_data: Iterable[Any] | None = None
    metric: Metric | None = None
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    augment: Callable[[Any], Any] | None = None
    device: str | torch.device | None = None
    progress: bool = True
    distill: Distillation | None = None
    noise: NoiseInjection | None = None
    regularizer: Regularizer | None = None
    seed: int = 0
    inputs: InputsFn | None = None
    max_steps: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        _positive("lr", self.lr)
        _check_budgets(self.max_steps, self.max_seconds)
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise ConfigError(f"finetune: epochs={self.epochs!r} must be a positive int")
        for name in ("momentum", "weight_decay", "warmup", "min_delta"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
                raise ConfigError(f"finetune: {name}={value!r} must be a finite number >= 0")
        if self.grad_clip is not None:
            _positive("grad_clip", self.grad_clip)
        get_lr_schedule(self.lr_schedule)  # unknown name -> RegistryError listing valid ones
        if self.patience is not None:
            if not isinstance(self.patience, int) or self.patience < 1:
                raise ConfigError(f"finetune: patience={self.patience!r} must be an int >= 1")
            if self.val_data is None and self.metric is None:
                raise ConfigError(
                    f"finetune: patience={self.patience} needs a validation signal; pass "
                    "val_data= (accuracy) or metric=callable(model) -> float"
                )
        for name in ("loss_fn", "metric", "augment", "regularizer", "inputs"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(f"finetune: {name}={value!r} must be callable or None")
        if self.distill is not None and not isinstance(self.distill, Distillation):
            raise ConfigError(
                f"finetune: distill must be a Distillation(teacher, ...), got {self.distill!r}"
            )
        if self.noise is not None and not isinstance(self.noise, NoiseInjection):
            raise ConfigError(
                f"finetune: noise must be a NoiseInjection(scale, ...), got {self.noise!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable settings (callables and data by name)."""
        out: dict[str, Any] = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            if isinstance(value, (Distillation, NoiseInjection)):
                value = value.to_dict()
            elif isinstance(value, torch.device):
                value = str(value)
            elif value is not None and not isinstance(value, (str, int, float, bool)):
                value = getattr(value, "__name__", type(value).__name__)
            out[key] = value
        return out


def _check_budgets(max_steps: Any, max_seconds: Any) -> None:
    """``max_steps`` an int >= 1 and ``max_seconds`` a number > 0, each or ``None``."""
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
    ):
        raise ConfigError(
            f"finetune: max_steps={max_steps!r} must be an int >= 1, or None (no limit)"
        )
    if max_seconds is not None:
        _positive("max_seconds", max_seconds)


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"finetune: {name}={value!r} must be a number > 0")
    if not math.isfinite(value):
        raise ConfigError(f"finetune: {name}={value!r} must be finite")


@dataclass
class EpochRecord:
    """One epoch of fine-tuning: mean training objective, validation metric, last lr."""

    epoch: int
    train_loss: float
    val_metric: float | None
    lr: float
    seconds: float


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    Attributes:
        history: one :class:`EpochRecord` per epoch run.
        best_epoch: the epoch whose weights the model holds at the end when ``restore_best``
            (0: the model before fine-tuning was best); the last epoch without validation.
        best_metric: the validation metric of ``best_epoch`` (``None`` without validation).
        initial_metric: the validation metric before fine-tuning (``None`` without validation).
        stopped_early: training stopped because of ``patience``.
        restored_best: the weights of ``best_epoch`` were loaded back at the end.
        steps: optimizer steps taken.
        seconds: wall time.
        config: the settings, as :meth:`FinetuneConfig.to_dict`.
        stopped_by: ``"max_steps"`` or ``"max_seconds"`` when that budget ended training
            before ``epochs`` were done, else ``None``.
        step_losses: the training objective of every optimizer step, in order.

    Example:
        >>> r = FinetuneResult([EpochRecord(1, 0.5, 0.9, 0.01, 1.0)], 1, 0.9, 0.8, False,
        ...                    False, 10, 1.0)
        >>> r.to_dict()["history"][0]["val_metric"]
        0.9
    """

    history: list[EpochRecord]
    best_epoch: int
    best_metric: float | None
    initial_metric: float | None
    stopped_early: bool
    restored_best: bool
    steps: int
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    stopped_by: str | None = None
    step_losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict."""
        return asdict(self)
