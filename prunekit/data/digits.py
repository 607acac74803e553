"""scikit-learn's bundled handwritten digits (8x8, 1797 images), ready for PyTorch.

The data ships inside scikit-learn, so loading works offline.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

__all__ = ["DIGITS_NUM_CLASSES", "DIGITS_SHAPE", "load_digits"]

DIGITS_NUM_CLASSES = 10
"""Number of classes (digits 0-9)."""

DIGITS_SHAPE = (1, 8, 8)
"""Shape of one image tensor: channels, height, width."""

_PIXEL_MAX = 16.0  # sklearn's digits take integer grey levels 0..16


def load_digits(*, seed: int = 0, val_fraction: float = 0.2) -> tuple[TensorDataset, TensorDataset]:
    """Load the digits as a stratified, deterministic train/validation split.

    Images are ``float32`` tensors of shape ``(1, 8, 8)`` scaled to ``[0, 1]``; labels are
    ``int64`` class indices. The split keeps each class's share in both parts (each class
    contributes ``round(n_class * val_fraction)`` images to validation) and depends only on
    ``seed``.

    Args:
        seed: Seed of the shuffle that picks validation images.
        val_fraction: Share of each class held out for validation, in ``(0, 1)``.

    Returns:
        ``(train, val)`` datasets yielding ``(image, label)`` pairs.

    Raises:
        ValueError: If ``val_fraction`` is not strictly between 0 and 1.
        ImportError: If scikit-learn is not installed (``pip install scikit-learn``).

    Example:
        >>> train, val = load_digits(seed=0, val_fraction=0.2)
        >>> len(train) + len(val)
        1797
        >>> image, label = train[0]
        >>> tuple(image.shape), image.dtype, label.dtype
        ((1, 8, 8), torch.float32, torch.int64)
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(
            f"load_digits: val_fraction must be strictly between 0 and 1, got {val_fraction!r}"
        )
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_digits needs scikit-learn, which ships the digits data: pip install scikit-learn"
        ) from exc

    bunch = _sk_load_digits()
    images = np.asarray(bunch.data, dtype=np.float32).reshape(-1, *DIGITS_SHAPE) / _PIXEL_MAX
    labels = np.asarray(bunch.target, dtype=np.int64)

    rng = np.random.default_rng(seed)
    val_parts: list[np.ndarray] = []
    train_parts: list[np.ndarray] = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        n_val = min(max(n_val, 1), len(idx) - 1)
        val_parts.append(idx[:n_val])
        train_parts.append(idx[n_val:])
    train_idx = np.sort(np.concatenate(train_parts))
    val_idx = np.sort(np.concatenate(val_parts))
    rng.shuffle(train_idx)  # mix classes; deterministic given the seed

    x = torch.from_numpy(images)
    y = torch.from_numpy(labels)
    train_t = torch.from_numpy(train_idx)
    val_t = torch.from_numpy(val_idx)
    return TensorDataset(x[train_t], y[train_t]), TensorDataset(x[val_t], y[val_t])
