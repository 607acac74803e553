"""Data, cached baseline training and the quality measurements shared by every method.

Baselines are trained from scratch with :func:`prunekit.recovery.finetune` (SGD, cosine
schedule) and cached as safetensors under ``prunekit.data.cache_dir() / "bench"``, keyed by
task, seed, epochs and training subset, so a rerun only pays for pruning and recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from prunekit.data import DatasetSplits, cache_dir, load_dataset
from prunekit.evaluation import precision_recall_f1
from prunekit.models import build_model
from prunekit.recovery import finetune

from .config import TaskSpec

__all__ = [
    "TaskData",
    "ce_loss",
    "classifier_of",
    "evaluate_quality",
    "load_task",
    "trained_baseline",
]


@dataclass
class TaskData:
    """Loaders of one task (the split is fixed: ``load_dataset(seed=0)`` for every seed)."""

    splits: DatasetSplits
    train: DataLoader[Any]
    val: DataLoader[Any]
    test: DataLoader[Any]
    example: torch.Tensor

    def calib_batches(self, n: int) -> list[Any]:
        """The first ``n`` training batches, the calibration data of data-driven criteria."""
        out = []
        for i, batch in enumerate(self.train):
            if i >= n:
                break
            out.append(batch)
        return out


def load_task(task: TaskSpec, *, seed: int) -> TaskData:
    """Load the dataset of ``task``; ``seed`` only orders the training shuffle."""
    splits = load_dataset(task.dataset, seed=0)
    train_set: Dataset[Any] = splits.train
    n_train = len(splits.train)
    if task.train_subset is not None and task.train_subset < n_train:
        gen = torch.Generator().manual_seed(1234)
        idx = torch.randperm(n_train, generator=gen)[: task.train_subset].tolist()
        train_set = Subset(train_set, idx)
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(train_set, batch_size=task.batch_size, shuffle=True, generator=gen)
    val = DataLoader(splits.val, batch_size=256)
    test = DataLoader(splits.test, batch_size=256)
    example = torch.zeros(1, *splits.input_shape)
    return TaskData(splits, train, val, test, example)


def ce_loss(output: torch.Tensor, batch: Any) -> torch.Tensor:
    """Cross-entropy of logits against ``batch[1]``."""
    return F.cross_entropy(output, batch[1])


def classifier_of(model: nn.Module) -> nn.Module:
    """The last ``nn.Linear`` of ``model`` (its outputs are the classes and are never cut)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier to protect")
    return linears[-1]


def _cache_path(task: TaskSpec, seed: int) -> Path:
    sub = "all" if task.train_subset is None else str(task.train_subset)
    key = f"{task.model}-{task.dataset}-s{seed}-e{task.train_epochs}-n{sub}"
    return cache_dir() / "bench" / f"{key}.safetensors"


def trained_baseline(task: TaskSpec, data: TaskData, *, seed: int) -> tuple[nn.Module, bool]:
    """Train (or load from the cache) the unpruned model of ``task`` for ``seed``.

    Returns:
        ``(model, from_cache)``.
    """
    torch.manual_seed(seed)
    model = build_model(task.model, num_classes=data.splits.num_classes,
                        input_shape=tuple(data.splits.input_shape), **task.model_kwargs)  # fmt: skip
    path = _cache_path(task, seed)
    if path.exists():
        model.load_state_dict(load_file(str(path)))
        return model.eval(), True
    finetune(model, data.train, optimizer="sgd", lr=task.train_lr, momentum=0.9,
             weight_decay=5e-4, epochs=task.train_epochs, lr_schedule="cosine",
             warmup=min(1.0, task.train_epochs / 10), val_data=data.val, progress=False,
             seed=seed)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return model.eval(), False


@torch.no_grad()
def evaluate_quality(
    model: nn.Module, loader: DataLoader[Any], num_classes: int
) -> dict[str, float]:
    """Top-1 accuracy and macro-F1 (in percent) of ``model`` on ``loader``."""
    was_training = model.training
    model.eval()
    preds, targets = [], []
    for x, y in loader:
        preds.append(model(x).argmax(dim=1))
        targets.append(y)
    model.train(was_training)
    p, t = torch.cat(preds), torch.cat(targets)
    _, _, f1 = precision_recall_f1(p, t, average="macro", num_classes=num_classes)
    return {"acc": 100.0 * float((p == t).float().mean()), "f1": 100.0 * f1}
