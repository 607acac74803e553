"""End-to-end demo: train a small CNN on real digits, prune half its channels, fine-tune.

Run with ``make demo`` or ``python -m prunekit.demo``. Needs scikit-learn (bundled digits data);
runs offline on CPU in a few seconds.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import prunekit
from prunekit.data import load_digits
from prunekit.evaluation import count_macs, count_params
from prunekit.models import DigitsCNN

__all__ = ["Row", "evaluate", "format_table", "main", "train"]

SEED = 0
THREADS = 2
WIDTH = 32
EPOCHS = 6
FINETUNE_EPOCHS = 3
BATCH_SIZE = 64
LR = 3e-3
FINETUNE_LR = 1e-3
RATIO = 0.5


def train(
    model: nn.Module,
    data: TensorDataset,
    *,
    epochs: int,
    lr: float,
    batch_size: int = BATCH_SIZE,
    seed: int = SEED,
) -> nn.Module:
    """Train ``model`` in place with Adam and cross-entropy; return it.

    Args:
        model: Classifier mapping images to logits.
        data: ``(image, label)`` pairs.
        epochs: Passes over ``data``.
        lr: Adam learning rate.
        batch_size: Mini-batch size.
        seed: Seed of the batch shuffling.

    Returns:
        ``model``, trained and left in train mode.
    """
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
    return model


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorDataset, *, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on ``data``, in ``[0, 1]``; restores the training flag.

    Example:
        >>> from prunekit.data import load_digits
        >>> from prunekit.models import DigitsCNN
        >>> _, val = load_digits()
        >>> 0.0 <= evaluate(DigitsCNN(width=4), val) <= 1.0
        True
    """
    was_training = model.training
    model.eval()
    correct = 0
    total = 0
    for images, labels in DataLoader(data, batch_size=batch_size):
        correct += int((model(images).argmax(dim=1) == labels).sum())
        total += int(labels.numel())
    model.train(was_training)
    return correct / max(total, 1)


@dataclass(frozen=True)
class Row:
    """One line of the demo's result table."""

    stage: str
    accuracy: float
    params: int
    macs: int


def format_table(rows: list[Row]) -> str:
    """Render rows as an aligned text table, with params/MACs relative to the first row.

    Example:
        >>> print(format_table([Row("a", 0.5, 100, 1000), Row("b", 0.25, 50, 250)]))
        stage  val acc  params    (x)   MACs    (x)
        -----  -------  ------  -----  -----  -----
        a       50.00%     100  1.00x  1,000  1.00x
        b       25.00%      50  0.50x    250  0.25x
    """
    base = rows[0]
    header = ("stage", "val acc", "params", "(x)", "MACs", "(x)")
    cells = [
        (
            r.stage,
            f"{100 * r.accuracy:.2f}%",
            f"{r.params:,}",
            f"{r.params / max(base.params, 1):.2f}x",
            f"{r.macs:,}",
            f"{r.macs / max(base.macs, 1):.2f}x",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]

    def line(values: tuple[str, ...]) -> str:
        first = values[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(values[1:], widths[1:])]
        return "  ".join([first, *rest]).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths))]
    out.extend(line(c) for c in cells)
    return "\n".join(out)


def main() -> None:
    """Train, prune, fine-tune and print what each step cost and bought."""
    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    start = time.perf_counter()

    train_set, val_set = load_digits(seed=SEED)
    example_inputs = torch.zeros(1, 1, 8, 8)

    model = DigitsCNN(width=WIDTH)
    train(model, train_set, epochs=EPOCHS, lr=LR)
    rows = [
        Row(
            "trained",
            evaluate(model, val_set),
            count_params(model),
            count_macs(model, example_inputs),
        )
    ]
    print(f"trained DigitsCNN(width={WIDTH}) for {EPOCHS} epochs: val acc {rows[0].accuracy:.2%}")

    # Prune a copy so the trained model stays available for comparison.
    to_prune = copy.deepcopy(model)
    result = prunekit.prune(
        to_prune, example_inputs, ratio=RATIO, importance="l2", ignore=(to_prune.fc,)
    )
    pruned = result.model
    print()
    print(result.summary())
    print()
    rows.append(
        Row(
            f"pruned {RATIO:.0%} (no fine-tune)",
            evaluate(pruned, val_set),
            count_params(pruned),
            count_macs(pruned, example_inputs),
        )
    )

    train(pruned, train_set, epochs=FINETUNE_EPOCHS, lr=FINETUNE_LR, seed=SEED + 1)
    rows.append(
        Row(
            f"pruned + fine-tune {FINETUNE_EPOCHS} ep",
            evaluate(pruned, val_set),
            count_params(pruned),
            count_macs(pruned, example_inputs),
        )
    )

    print(format_table(rows))
    print(f"\ndone in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
