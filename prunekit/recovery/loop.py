"""The fine-tuning loop behind :func:`prunekit.recovery.finetune`."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from contextlib import ExitStack
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm  # type: ignore[import-untyped]

from .. import distributed
from ..errors import ConfigError, RecoveryError
from .batches import call_model, default_inputs, model_device, to_device
from .config import EpochRecord, FinetuneConfig, FinetuneResult
from .losses import accuracy, task_loss
from .optimizers import build_optimizer
from .schedules import lr_factor

__all__ = ["resolve_device", "run"]


def _is_ddp(model: nn.Module) -> bool:
    return isinstance(model, nn.parallel.DistributedDataParallel)


def resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    """The training device: ``device`` if given; else the model's own if it is not the CPU
    (or the model is DDP-wrapped); else CUDA when available, else the CPU.

    Example:
        >>> import torch
        >>> resolve_device(torch.nn.Linear(2, 2), "cpu").type
        'cpu'
    """
    current = model_device(model)
    if device is not None:
        try:
            wanted = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(
                f"finetune: device={device!r} is not a device; pass 'cpu', 'cuda' or 'cuda:1'"
            ) from exc
        if _is_ddp(model) and wanted.type != current.type:
            raise ConfigError(
                f"finetune: device={device!r} but the DistributedDataParallel model lives on "
                f"{current}; leave device=None or wrap the model on {device}"
            )
        return wanted
    if current.type != "cpu" or _is_ddp(model):
        return current
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _reiterable(data: Iterable[Any]) -> tuple[Iterable[Any], int]:
    """``data`` and its batches per epoch; one-shot iterators and len-less data become lists."""
    if iter(data) is not data:
        try:
            return data, len(data)  # type: ignore[arg-type]
        except TypeError:
            pass
    batches = list(data)
    return batches, len(batches)


def _sync_grads(params: list[nn.Parameter]) -> None:
    """All-reduce (average) gradients of parameters DDP does not own (distillation projections)."""
    dist = torch.distributed
    if not params or not (dist.is_available() and dist.is_initialized()):
        return
    world = dist.get_world_size()
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)


class _Trainer:
    """One fine-tuning run; :meth:`run` returns the :class:`FinetuneResult`."""

    def __init__(self, model: nn.Module, data: Iterable[Any], cfg: FinetuneConfig) -> None:
        self.model, self.cfg = model, cfg
        self.data, self.per_epoch = _reiterable(data)
        if self.per_epoch == 0:
            raise ConfigError("finetune: train_data has no batch; pass a non-empty DataLoader")
        self.device = resolve_device(model, cfg.device)
        self.inputs = cfg.inputs or default_inputs
        self.total = cfg.epochs * self.per_epoch
        if cfg.max_steps is not None:
            self.total = min(self.total, cfg.max_steps)
        self.warmup = round(cfg.warmup * self.per_epoch)
        self.noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.step_count = 0
        self.extra: list[nn.Parameter] = []
        self.start = self.train_start = time.perf_counter()
        self.stopped_by: str | None = None
        self.step_losses: list[float] = []

    def _prepare(self, stack: ExitStack) -> None:
        torch.manual_seed(self.cfg.seed)
        if not _is_ddp(self.model):
            self.model.to(self.device)
        kd = self.cfg.distill
        if kd is not None:
            kd.teacher.to(self.device)
            stack.enter_context(kd.attach(self.model))
            first = to_device(next(iter(self.data)), self.device)
            self.extra = kd.setup(self.model, self.inputs(first), first)
        self.optimizer = build_optimizer(
            self.cfg.optimizer, self.model, self.extra, lr=self.cfg.lr,
            momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay,
        )  # fmt: skip
        self.base_lrs = [float(g["lr"]) for g in self.optimizer.param_groups]

    def _pace(self) -> float:
        """Mean wall seconds per optimizer step so far."""
        return (time.perf_counter() - self.train_start) / max(self.step_count, 1)

    def _schedule_total(self) -> int:
        """The steps the lr schedule spans: the step budget, shortened under ``max_seconds``
        to the steps the time left allows at the pace so far (so a cosine still ends low)."""
        if self.cfg.max_seconds is None or self.step_count == 0:
            return self.total
        left = self.cfg.max_seconds - (time.perf_counter() - self.start)
        expected = self.step_count + int(max(left, 0.0) / self._pace())
        return max(self.step_count + 1, min(self.total, expected))

    def _exhausted(self) -> str | None:
        """Which budget forbids another step: ``max_steps`` reached, or the next step would
        end after ``max_seconds`` (at the mean pace so far); ``None`` when neither."""
        cfg = self.cfg
        if cfg.max_steps is not None and self.step_count >= cfg.max_steps:
            return "max_steps"
        if cfg.max_seconds is not None:
            pace = self._pace() if self.step_count else 0.0
            if time.perf_counter() - self.start + pace > cfg.max_seconds:
                return "max_seconds"
        return None

    def _set_lr(self) -> float:
        f = lr_factor(
            self.step_count, self._schedule_total(), schedule=self.cfg.lr_schedule,
            warmup=self.warmup,
        )  # fmt: skip
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f
        return self.base_lrs[0] * f

    def _loss(self, batch: Any) -> torch.Tensor:
        x = self.inputs(batch)
        out = call_model(self.model, x)
        loss_fn = self.cfg.loss_fn or task_loss

        def task() -> torch.Tensor:
            return loss_fn(out, batch)

        kd = self.cfg.distill
        loss = kd.loss(out, x, batch, task) if kd is not None else task()
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise RecoveryError(
                f"the loss is {type(loss).__name__}"
                f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}, not a scalar "
                "tensor; make loss_fn(output, batch) return one (e.g. end it with .mean())"
            )
        if self.cfg.regularizer is not None:
            loss = loss + self.cfg.regularizer(self.model).to(loss.device)
        return loss.reshape(())

    def _step(self, batch: Any, epoch: int) -> float:
        batch = to_device(batch, self.device)
        if self.cfg.augment is not None:
            batch = self.cfg.augment(batch)
        lr = self._set_lr()
        loss = self._loss(batch)
        if not torch.isfinite(loss.detach()):
            raise RecoveryError(
                f"finetune: the loss became {float(loss.detach())} at epoch {epoch}, step "
                f"{self.step_count} (lr {lr:.3g}); lower lr=, add warmup= or grad_clip="
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        _sync_grads(self.extra)
        if self.cfg.grad_clip is not None:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.optimizer.step()
        self.step_count += 1
        if self.cfg.noise is not None:
            self.cfg.noise.apply(self.model, self.step_count / self.total, self.noise_gen)
        value = float(loss.detach())
        self.step_losses.append(value)
        return value

    def _validate(self) -> float | None:
        if self.cfg.metric is not None:
            value = float(self.cfg.metric(self.model))
        elif self.cfg.val_data is not None:
            value = accuracy(
                self.model, self.cfg.val_data, inputs=self.cfg.inputs, device=self.device
            )
        else:
            return None
        if math.isnan(value):
            raise RecoveryError("finetune: the validation metric returned NaN; check metric=")
        # under torchrun: the mean over the ranks' validation shards, so that every rank takes
        # the same best-epoch and early-stopping decisions (a no-op alone)
        return distributed.mean_across_ranks(value)

    def _epoch(self, epoch: int, bar: Any) -> EpochRecord | None:
        """One pass over the data (cut short by a budget); ``None`` if no step was taken."""
        start, total_loss, steps = time.perf_counter(), 0.0, 0
        sampler = getattr(self.data, "sampler", None)
        if callable(getattr(sampler, "set_epoch", None)):  # DistributedSampler: new shuffle
            sampler.set_epoch(epoch)  # type: ignore[union-attr]
        self.model.train()
        for batch in self.data:
            self.stopped_by = self._exhausted()
            if self.stopped_by is not None:
                break
            loss = self._step(batch, epoch)
            total_loss, steps = total_loss + loss, steps + 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}", refresh=False)
        if steps == 0:
            return None
        lr = float(self.optimizer.param_groups[0]["lr"])
        record = EpochRecord(epoch, total_loss / steps, self._validate(), lr, 0.0)
        record.seconds = time.perf_counter() - start
        bar.set_postfix(epoch=epoch, loss=f"{record.train_loss:.4f}", val=record.val_metric)
        return record

    def run(self) -> FinetuneResult:
        start = time.perf_counter()
        flags = [(m, m.training) for m in self.model.modules()]
        with ExitStack() as stack:
            self.start = start
            self._prepare(stack)
            stack.callback(_restore_flags, flags)
            result = self._loop(stack)
        result.seconds = time.perf_counter() - start
        return result

    def _loop(self, stack: ExitStack) -> FinetuneResult:
        cfg = self.cfg
        initial = self._validate()
        best, best_epoch, stale, stopped = initial, 0, 0, False
        best_state = _snapshot(self.model) if initial is not None and cfg.restore_best else None
        history: list[EpochRecord] = []
        bar = stack.enter_context(tqdm(total=self.total, disable=not cfg.progress, unit="step"))
        self.train_start = time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            rec = self._epoch(epoch, bar)
            if rec is None:
                break
            history.append(rec)
            if rec.val_metric is None:
                best_epoch = epoch
                continue
            if best is None or rec.val_metric > best + cfg.min_delta:
                best, best_epoch, stale = rec.val_metric, epoch, 0
                best_state = _snapshot(self.model) if cfg.restore_best else None
            else:
                stale += 1
                if cfg.patience is not None and stale >= cfg.patience:
                    stopped = True
                    break
            if self.stopped_by is not None:
                break
        last = history[-1].epoch if history else 0
        restored = best_state is not None and best_epoch != last
        if restored and best_state is not None:
            self.model.load_state_dict(best_state)
        return FinetuneResult(
            history, best_epoch, best, initial, stopped, restored, self.step_count, 0.0,
            cfg.to_dict(), self.stopped_by, self.step_losses,
        )  # fmt: skip


def _restore_flags(flags: list[tuple[nn.Module, bool]]) -> None:
    for m, flag in flags:
        m.training = flag


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model.state_dict()`` (of the wrapper itself under DDP)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def run(model: nn.Module, train_data: Iterable[Any], config: FinetuneConfig) -> FinetuneResult:
    """Run :func:`prunekit.recovery.finetune` with a validated :class:`FinetuneConfig`.

    Example:
        >>> import torch
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> run(torch.nn.Linear(3, 2), data, FinetuneConfig(epochs=2, progress=False)).steps
        2
    """
    return _Trainer(model, train_data, config).run()
