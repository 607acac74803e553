"""Stratified splitting, train-only standardisation and DataLoaders, checked by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prunekit.data import DatasetSplits, RawDataset, make_splits, stratified_indices
from prunekit.errors import ConfigError, DataError


def test_stratified_counts_follow_the_rounding_rule() -> None:
    # class 0: 10 samples, class 1: 7, class 2: 3; test 0.2, val 0.1.
    # per class floor(n*f + 0.5): test 2/1/1 (1.4 -> 1, 0.6 -> 1), val 1/1/0 (0.7 -> 1, 0.3 -> 0)
    y = np.array([0] * 10 + [1] * 7 + [2] * 3)
    train, val, test = stratified_indices(y, seed=0, val_fraction=0.1, test_fraction=0.2)
    assert np.bincount(y[test], minlength=3).tolist() == [2, 1, 1]
    assert np.bincount(y[val], minlength=3).tolist() == [1, 1, 0]
    assert np.bincount(y[train], minlength=3).tolist() == [7, 5, 2]


def test_splits_partition_the_positions() -> None:
    y = np.repeat(np.arange(4), 25)
    parts = stratified_indices(y, seed=3, val_fraction=0.15, test_fraction=0.25)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(100))
    assert all(p.dtype == np.int64 for p in parts)


def test_split_depends_only_on_seed() -> None:
    y = np.repeat(np.arange(3), 30)
    a = stratified_indices(y, seed=5, val_fraction=0.1, test_fraction=0.2)
    b = stratified_indices(y, seed=5, val_fraction=0.1, test_fraction=0.2)
    c = stratified_indices(y, seed=6, val_fraction=0.1, test_fraction=0.2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(np.sort(a[2]), np.sort(c[2]))


def test_classes_are_mixed_within_each_split() -> None:
    y = np.repeat(np.arange(2), 50)
    train, _, _ = stratified_indices(y, seed=0, val_fraction=0.1, test_fraction=0.2)
    # not sorted by class: some class-1 sample comes before some class-0 sample
    labels = y[train]
    assert labels[: len(labels) // 2].sum() > 0


@pytest.mark.parametrize(
    ("val", "test"), [(-0.1, 0.2), (0.1, 1.0), (0.5, 0.5), (float("nan"), 0.1), (True, 0.1)]
)
def test_bad_fractions_raise_config_error(val: float, test: float) -> None:
    with pytest.raises(ConfigError, match="fraction"):
        stratified_indices(np.zeros(10, int), seed=0, val_fraction=val, test_fraction=test)


def test_tiny_class_raises_data_error() -> None:
    y = np.array([0] * 10 + [1])  # class 1: floor(1*0.5+0.5) = 1 test sample, none left
    with pytest.raises(DataError, match="class 1 has only 1 samples"):
        stratified_indices(y, seed=0, val_fraction=0.0, test_fraction=0.5)


def test_zero_fractions_give_empty_splits() -> None:
    raw = RawDataset(np.ones((6, 3), np.float32), np.array([0, 1] * 3))
    data = make_splits(raw, name="toy", val_fraction=0.0, test_fraction=0.0)
    assert data.sizes() == {"train": 6, "val": 0, "test": 0}
    assert data.val.tensors[0].shape == (0, 3)


def _toy_tabular() -> RawDataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32) * [1.0, 5.0, 0.0] + [0.0, 10.0, 7.0]
    return RawDataset(x.astype(np.float32), np.repeat(np.arange(2), 20), standardize=True)


def test_standardisation_uses_training_rows_only() -> None:
    raw = _toy_tabular()
    data = make_splits(raw, name="toy", seed=1, val_fraction=0.2, test_fraction=0.2)
    train_rows = raw.x[data.indices["train"].numpy()].astype(np.float64)
    mean, std = train_rows.mean(0), train_rows.std(0)
    std[2] = 1.0  # the constant third feature keeps std 1 and maps to 0
    assert np.allclose(data.feature_mean.numpy(), mean, atol=1e-5)
    assert np.allclose(data.feature_std.numpy(), std, atol=1e-5)
    for split in ("train", "val", "test"):
        raw_rows = raw.x[data.indices[split].numpy()]
        expected = (raw_rows - mean) / std
        assert np.allclose(data_split(data, split).numpy(), expected, atol=1e-5)
    train_x = data.train.tensors[0].double()
    assert torch.allclose(train_x[:, :2].mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(train_x[:, :2].std(0, unbiased=False), torch.ones(2, dtype=torch.float64))
    # statistics over all rows differ from training ones, so the check above is not vacuous
    assert not np.allclose(raw.x.astype(np.float64).mean(0)[:2], mean[:2], atol=1e-3)


def data_split(data: DatasetSplits, split: str) -> torch.Tensor:
    tensors: tuple[torch.Tensor, ...] = getattr(data, split).tensors
    return tensors[0]


def test_images_are_not_standardised() -> None:
    x = np.linspace(0, 1, 20 * 4, dtype=np.float32).reshape(20, 1, 2, 2)
    data = make_splits(RawDataset(x, np.arange(20) % 2), name="img")
    assert data.feature_mean is None and data.feature_std is None
    pos = data.indices["train"]
    assert torch.equal(data.train.tensors[0], torch.from_numpy(x)[pos])


def test_mismatched_arrays_raise() -> None:
    with pytest.raises(DataError, match="do not match"):
        make_splits(RawDataset(np.zeros((4, 2), np.float32), np.zeros(3, int)), name="bad")
    with pytest.raises(DataError, match="labels must lie in 0..1"):
        raw = RawDataset(np.zeros((4, 2), np.float32), np.array([0, 1, 2, 0]), ("a", "b"))
        make_splits(raw, name="bad")


def test_loaders_shuffle_train_by_seed_and_keep_eval_order() -> None:
    x = torch.arange(30.0).reshape(30, 1)
    y = torch.arange(30) % 3
    ds = torch.utils.data.TensorDataset(x, y)
    data = DatasetSplits("toy", ds, ds, ds, num_classes=3, input_shape=(1,))
    first = [b[0].flatten().tolist() for b in data.loaders(8, seed=2).train]
    again = [b[0].flatten().tolist() for b in data.loaders(8, seed=2).train]
    other = [b[0].flatten().tolist() for b in data.loaders(8, seed=3).train]
    assert first == again and first != other
    assert sorted(sum(first, [])) == list(range(30))
    val = [b[0].flatten().tolist() for b in data.loaders(8, eval_batch_size=30).val]
    assert val == [list(map(float, range(30)))]
    with pytest.raises(ConfigError, match="batch_size"):
        data.loaders(0)


def test_to_dict_is_json_serialisable() -> None:
    data = make_splits(_toy_tabular(), name="toy", val_fraction=0.1, test_fraction=0.2)
    d = json.loads(json.dumps(data.to_dict()))
    assert d == {
        "name": "toy",
        "task": "classification",
        "num_classes": 2,
        "input_shape": [3],
        "class_names": None,
        "seed": 0,
        "sizes": {"train": 28, "val": 4, "test": 8},
        "standardized": True,
    }
