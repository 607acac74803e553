"""Fine-tune a pruned model: :func:`finetune`, one call over plain PyTorch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ..spec import FINETUNE
from .batches import InputsFn
from .config import FinetuneConfig, FinetuneResult, Metric, Regularizer
from .distill import Distillation
from .loop import run
from .losses import LossFn
from .noise import NoiseInjection
from .optimizers import OptimizerSpec

__all__ = ["finetune"]


def finetune(
    model: nn.Module,
    train_data: Iterable[Any],
    *,
    loss_fn: LossFn | None = None,
    optimizer: OptimizerSpec = FINETUNE.optimizer,
    lr: float = FINETUNE.lr,
    momentum: float = FINETUNE.momentum,
    weight_decay: float = 0.0,
    epochs: int = FINETUNE.epochs,
    lr_schedule: str = FINETUNE.lr_schedule,
    warmup: float = 0.0,
    grad_clip: float | None = None,
    val_data: Iterable[Any] | None = None,
    metric: Metric | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    augment: Callable[[Any], Any] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    distill: Distillation | None = None,
    noise: NoiseInjection | None = None,
    regularizer: Regularizer | None = None,
    seed: int = 0,
    inputs: InputsFn | None = None,
    max_steps: int | None = None,
    max_seconds: float | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` in place (plain PyTorch; a ``DistributedDataParallel`` wrapper works).

    Each step: ``batch = augment(batch)``, ``out = model(inputs(batch))``, then the loss
    (``loss_fn(out, batch)``, or the output's ``.loss``, or cross-entropy of logits vs labels;
    replaced by the distillation objective when ``distill`` is given) plus
    ``regularizer(model)``; backward, gradient clipping, optimizer step, weight noise.
    After each epoch the validation metric (higher is better) decides the best epoch and
    early stopping; the best weights are loaded back at the end (state_dict of ``model``
    itself, so a DDP wrapper restores as a whole).

    Args:
        model: the model to train (moved to ``device``); training flags are restored after.
        train_data: a re-iterable of batches (``DataLoader``, list); a one-shot iterator or
            an object without ``len`` is materialised into a list first.
        loss_fn: ``loss_fn(output, batch) -> scalar``; default the output's ``.loss`` or
            cross-entropy (labels: ``batch[1]`` or ``batch["labels"]``).
        optimizer: ``"sgd"``, ``"adam"``, ``"adamw"`` (see ``available_optimizers``) or a
            factory ``callable(param_groups) -> torch.optim.Optimizer``.
        lr: base learning rate (a factory's own rates are used as the base instead).
        momentum: SGD momentum.
        weight_decay: decay of weight matrices/kernels (none on 1-D parameters).
        epochs: passes over ``train_data``.
        lr_schedule: ``"cosine"``, ``"step"``, ``"constant"``, ``"onecycle"`` or a registered name.
        warmup: epochs (may be fractional) of linear learning-rate warm-up.
        grad_clip: clip the global gradient norm to this value.
        val_data: labelled validation batches; the default metric is top-1 accuracy on them.
        metric: ``metric(model) -> float``, higher is better; overrides the accuracy.
        patience: stop after this many epochs without improvement (needs validation).
        min_delta: the smallest metric gain that counts as an improvement.
        restore_best: load the best epoch's weights back at the end.
        augment: ``augment(batch) -> batch``, applied to training batches on the device.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default the model's device if it is
            not the CPU, else CUDA when available, else the CPU.
        progress: show a tqdm progress bar.
        distill: a :class:`Distillation` from the unpruned teacher.
        noise: a :class:`NoiseInjection` added after each step.
        regularizer: ``regularizer(model) -> scalar`` added to the loss (e.g. :class:`GroupLasso`).
        seed: seeds PyTorch's global generator (shuffling, dropout) and the noise.
        inputs: ``inputs(batch) -> model inputs``; default ``batch[0]``, or the dict itself.
        max_steps: stop after this many optimizer steps (the lr schedule spans
            ``min(epochs * batches, max_steps)`` steps).
        max_seconds: stop before a step that would end after this many wall seconds from
            the call (at the mean step time so far); the lr schedule is fitted to the steps
            the time left allows. ``result.stopped_by`` says which budget ended training.

    Returns:
        A :class:`FinetuneResult`.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
        >>> data = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
        >>> net = torch.nn.Linear(4, 2)
        >>> res = finetune(net, data, val_data=data, epochs=5, lr=0.5, progress=False)
        >>> res.best_metric > res.initial_metric, len(res.history)
        (True, 5)
    """
    config = FinetuneConfig(
        loss_fn=loss_fn, optimizer=optimizer, lr=lr, momentum=momentum,
        weight_decay=weight_decay, epochs=epochs, lr_schedule=lr_schedule, warmup=warmup,
        grad_clip=grad_clip, val_data=val_data, metric=metric, patience=patience,
        min_delta=min_delta, restore_best=restore_best, augment=augment, device=device,
        progress=progress, distill=distill, noise=noise, regularizer=regularizer, seed=seed,
        inputs=inputs, max_steps=max_steps, max_seconds=max_seconds,
    )  # fmt: skip
    return run(model, train_data, config)
