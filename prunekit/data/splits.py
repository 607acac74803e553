"""Deterministic stratified train/val/test splits and the :class:`DatasetSplits` they produce.

Splitting rule (per class ``c`` with ``n_c`` samples, classes in ascending order, one
``numpy.random.default_rng(seed)`` for the whole split):

* shuffle the class's sample positions;
* the first ``floor(n_c * test_fraction + 0.5)`` go to *test*, the next
  ``floor(n_c * val_fraction + 0.5)`` to *val*, the rest to *train*;
* each split's positions are then shuffled once more, so classes are mixed.

The result depends only on the data, the fractions and ``seed``. Tabular features are then
standardised with the mean and (population) standard deviation of the *training* split only;
a constant training feature gets standard deviation 1, so it maps to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..errors import ConfigError, DataError
from .sources import RawDataset

__all__ = ["DatasetSplits", "Loaders", "make_splits", "stratified_indices"]

SPLIT_NAMES = ("train", "val", "test")


def _check_fractions(val_fraction: float, test_fraction: float, where: str) -> None:
    for label, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {label} must be a number in [0, 1), got {value!r}")
        if not (0.0 <= value < 1.0) or math.isnan(value):
            raise ConfigError(f"{where}: {label} must be in [0, 1), got {value!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"{where}: val_fraction + test_fraction must be < 1 to leave training data, got "
            f"{val_fraction!r} + {test_fraction!r}; lower one of them"
        )


def _share(n: int, fraction: float) -> int:
    return int(math.floor(n * fraction + 0.5))


def stratified_indices(
    y: np.ndarray, *, seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split sample positions into train/val/test, keeping each class's share in every split.

    Args:
        y: Integer class labels, shape ``(N,)``.
        seed: Seed of the shuffles (see the module docstring for the exact rule).
        val_fraction: Share of each class for validation, in ``[0, 1)``.
        test_fraction: Share of each class for test, in ``[0, 1)``; the two sum to ``< 1``.

    Returns:
        ``(train, val, test)`` ``int64`` position arrays; together a partition of ``0..N-1``.

    Raises:
        ConfigError: If a fraction is out of range.
        DataError: If a class would keep no training sample.

    Example:
        >>> y = np.array([0] * 10 + [1] * 10)
        >>> tr, va, te = stratified_indices(y, seed=0, val_fraction=0.1, test_fraction=0.2)
        >>> len(tr), len(va), len(te), sorted(np.bincount(y[te]).tolist())
        (14, 2, 4, [2, 2])
    """
    _check_fractions(val_fraction, test_fraction, "stratified_indices")
    labels = np.asarray(y)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test, n_val = _share(len(idx), test_fraction), _share(len(idx), val_fraction)
        if n_test + n_val >= len(idx):
            raise DataError(
                f"class {cls} has only {len(idx)} samples: val_fraction={val_fraction} and "
                f"test_fraction={test_fraction} leave none for training; lower the fractions"
            )
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    out = []
    for name in SPLIT_NAMES:
        joined = np.concatenate(parts[name]) if parts[name] else np.empty(0, np.int64)
        out.append(rng.permutation(joined).astype(np.int64))
    return out[0], out[1], out[2]


class Loaders(NamedTuple):
    """The three DataLoaders of a :class:`DatasetSplits` (train shuffled, val/test in order)."""

    train: DataLoader[tuple[torch.Tensor, ...]]
    val: DataLoader[tuple[torch.Tensor, ...]]
    test: DataLoader[tuple[torch.Tensor, ...]]


@dataclass(eq=False)
class DatasetSplits:
    """A dataset split three ways, as ``(input, label)`` TensorDatasets, with its metadata.

    Attributes:
        name: Registry name of the dataset.
        train: Training split.
        val: Validation split (may be empty when ``val_fraction=0``).
        test: Test split (may be empty when ``test_fraction=0``).
        num_classes: Number of classes.
        input_shape: Shape of one input, e.g. ``(1, 28, 28)``.
        class_names: Name of each class index, if known.
        task: Always ``"classification"`` for the built-in sets.
        seed: Seed the split was made with.
        indices: Per split, the positions of its samples in the source data.
        feature_mean: Training-split mean per feature used for standardisation (tabular
            sets), else ``None``.
        feature_std: Training-split standard deviation per feature (1 where constant).

    Example:
        >>> x = torch.arange(8.0).reshape(4, 2)
        >>> y = torch.tensor([0, 1, 0, 1])
        >>> d = DatasetSplits("toy", TensorDataset(x, y), TensorDataset(x[:0], y[:0]),
        ...                   TensorDataset(x[:0], y[:0]), num_classes=2, input_shape=(2,))
        >>> d.sizes(), d.example_inputs(1).shape
        ({'train': 4, 'val': 0, 'test': 0}, torch.Size([1, 2]))
    """

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] | None = None
    task: str = "classification"
    seed: int = 0
    indices: dict[str, torch.Tensor] = field(default_factory=dict)
    feature_mean: torch.Tensor | None = None
    feature_std: torch.Tensor | None = None

    def sizes(self) -> dict[str, int]:
        """Number of samples per split."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def example_inputs(self, n: int = 2) -> torch.Tensor:
        """The first ``n`` training inputs, e.g. as ``example_inputs`` for ``prunekit.prune``."""
        if n < 1:
            raise ConfigError(f"example_inputs: n must be >= 1, got {n}")
        inputs: torch.Tensor = self.train.tensors[0][:n]
        return inputs

    def loaders(
        self,
        batch_size: int = 64,
        *,
        seed: int = 0,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
    ) -> Loaders:
        """Build DataLoaders: train shuffled by a generator seeded with ``seed``.

        Args:
            batch_size: Training batch size.
            seed: Seed of the training shuffle (same seed, same batch order).
            eval_batch_size: Batch size for val/test; default ``batch_size``.
            num_workers: Worker processes per loader (0 loads in the main process).

        Returns:
            :class:`Loaders` ``(train, val, test)``.

        Raises:
            ConfigError: If a batch size is < 1 or ``num_workers`` < 0.

        Example:
            >>> x, y = torch.arange(6.0).reshape(6, 1), torch.arange(6) % 2
            >>> d = DatasetSplits("toy", TensorDataset(x, y), TensorDataset(x, y),
            ...                   TensorDataset(x, y), num_classes=2, input_shape=(1,))
            >>> train, val, test = d.loaders(4, seed=1)
            >>> [len(b[0]) for b in train], len(val)
            ([4, 2], 2)
        """
        eval_bs = batch_size if eval_batch_size is None else eval_batch_size
        for label, value in (("batch_size", batch_size), ("eval_batch_size", eval_bs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{self.name}.loaders: {label} must be an int >= 1, got {value!r}"
                )
        if num_workers < 0:
            raise ConfigError(f"{self.name}.loaders: num_workers must be >= 0, got {num_workers}")
        generator = torch.Generator().manual_seed(seed)
        train = DataLoader(
            self.train,
            batch_size=batch_size,
            shuffle=True,
            generator=generator,
            num_workers=num_workers,
        )
        val = DataLoader(self.val, batch_size=eval_bs, shuffle=False, num_workers=num_workers)
        test = DataLoader(self.test, batch_size=eval_bs, shuffle=False, num_workers=num_workers)
        return Loaders(train, val, test)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (metadata and sizes, not the tensors)."""
        return {
            "name": self.name,
            "task": self.task,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names) if self.class_names is not None else None,
            "seed": self.seed,
            "sizes": self.sizes(),
            "standardized": self.feature_mean is not None,
        }


def _standardize(x: np.ndarray, train_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardise every row with the training rows' per-feature mean and std."""
    train = x[train_idx].astype(np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    scaled = ((x.astype(np.float64) - mean) / std).astype(np.float32)
    return scaled, mean.astype(np.float32), std.astype(np.float32)


def make_splits(
    raw: RawDataset,
    *,
    name: str,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> DatasetSplits:
    """Split a raw dataset (stratified, by seed) and standardise tabular features.

    Args:
        raw: All samples.
        name: Name recorded on the result.
        seed: Split seed.
        val_fraction: Share of each class for validation.
        test_fraction: Share of each class for test.

    Returns:
        The :class:`DatasetSplits`.

    Raises:
        ConfigError: If a fraction is out of range.
        DataError: If the arrays are inconsistent or a class is too small to split.

    Example:
        >>> raw = RawDataset(np.arange(20, dtype=np.float32).reshape(10, 2),
        ...                  np.array([0, 1] * 5), standardize=True)
        >>> d = make_splits(raw, name="toy", seed=0, val_fraction=0.2, test_fraction=0.2)
        >>> d.sizes(), abs(float(d.train.tensors[0].mean())) < 1e-6
        ({'train': 6, 'val': 2, 'test': 2}, True)
    """
    x, y = np.asarray(raw.x), np.asarray(raw.y)
    if x.ndim < 2 or y.shape != x.shape[:1]:
        raise DataError(
            f"dataset {name!r}: inputs {x.shape} and labels {y.shape} do not match; expected "
            "x of shape (N, ...) and y of shape (N,)"
        )
    if len(y) and (y.min() < 0 or y.max() >= raw.num_classes):
        raise DataError(
            f"dataset {name!r}: labels must lie in 0..{raw.num_classes - 1}, found "
            f"{int(y.min())}..{int(y.max())}"
        )
    parts = stratified_indices(y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    mean = std = None
    features = x.astype(np.float32, copy=False)
    if raw.standardize:
        features, mean, std = _standardize(features, parts[0])
    if not features.flags.writeable:  # torch.from_numpy needs a writable array
        features = features.copy()
    xt = torch.from_numpy(np.ascontiguousarray(features))
    yt = torch.from_numpy(y.astype(np.int64))
    sets = {}
    indices = {}
    for split, idx in zip(SPLIT_NAMES, parts):
        pos = torch.from_numpy(idx)
        sets[split] = TensorDataset(xt[pos], yt[pos])
        indices[split] = pos
    return DatasetSplits(
        name=name,
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        num_classes=raw.num_classes,
        input_shape=raw.input_shape,
        class_names=raw.class_names,
        seed=seed,
        indices=indices,
        feature_mean=None if mean is None else torch.from_numpy(mean),
        feature_std=None if std is None else torch.from_numpy(std),
    )
