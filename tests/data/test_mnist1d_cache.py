"""The cache directory lookup, atomic .npz writes and the MNIST-1D cache (with a fake generator).

The real generator (3 s) runs once, in tests/data/test_dataset_registry.py; here it is
replaced by a fast fake so the cache logic can be checked in isolation.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prunekit.data import cache_dir
from prunekit.data import mnist1d as mnist1d_module
from prunekit.data.cache import save_npz_atomic
from prunekit.data.mnist1d import load_mnist1d_arrays


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PRUNEKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "prunekit"
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("PRUNEKIT_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "prunekit"


def test_save_npz_atomic_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "x.npz"
    save_npz_atomic(target, a=np.arange(3), b=np.eye(2))
    save_npz_atomic(target, a=np.arange(4), b=np.eye(2))  # overwrite
    assert [p.name for p in target.parent.iterdir()] == ["x.npz"]
    with np.load(target) as stored:
        assert stored["a"].tolist() == [0, 1, 2, 3]


class FakeGenerator:
    """Stands in for mnist1d.data: seeds the global RNGs like the real one, counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def get_dataset_args(self) -> Any:
        class Args:
            seed = 42

        return Args()

    def make_dataset(self, args: Any) -> dict[str, np.ndarray]:
        self.calls += 1
        random.seed(args.seed)
        np.random.seed(args.seed)
        x = np.random.normal(size=(10, 40))
        y = np.arange(10)
        return {"x": x[:8], "x_test": x[8:], "y": y[:8], "y_test": y[8:]}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGenerator:
    generator = FakeGenerator()
    real_import = mnist1d_module.import_optional

    def fake_import(module: str, **kwargs: str) -> Any:
        return generator if module == "mnist1d.data" else real_import(module, **kwargs)

    monkeypatch.setattr(mnist1d_module, "import_optional", fake_import)
    return generator


def test_generates_once_then_reads_the_cache(fake: FakeGenerator, tmp_path: Path) -> None:
    x, y = load_mnist1d_arrays(directory=tmp_path)
    assert fake.calls == 1
    assert x.shape == (10, 40) and x.dtype == np.float32 and y.dtype == np.int64
    assert y.tolist() == list(range(10))  # generator's train part, then its test part
    files = list(tmp_path.glob("mnist1d-*.npz"))
    assert len(files) == 1
    x2, y2 = load_mnist1d_arrays(directory=tmp_path)
    assert fake.calls == 1  # read back, not regenerated
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_corrupt_cache_is_regenerated(fake: FakeGenerator, tmp_path: Path) -> None:
    load_mnist1d_arrays(directory=tmp_path)
    (cached,) = tmp_path.glob("mnist1d-*.npz")
    cached.write_bytes(b"garbage")
    x, _ = load_mnist1d_arrays(directory=tmp_path)
    assert fake.calls == 2 and x.shape == (10, 40)
    with np.load(cached) as stored:  # rewritten with good content
        assert stored["x"].shape == (10, 40)


def test_use_cache_false_touches_no_file(fake: FakeGenerator, tmp_path: Path) -> None:
    load_mnist1d_arrays(directory=tmp_path, use_cache=False)
    assert fake.calls == 1 and list(tmp_path.iterdir()) == []


def test_generation_keeps_the_callers_random_state(fake: FakeGenerator, tmp_path: Path) -> None:
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    load_mnist1d_arrays(directory=tmp_path)
    assert (random.random(), np.random.random()) == expected


def test_unwritable_cache_warns_and_still_returns(fake: FakeGenerator, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    with pytest.warns(UserWarning, match="could not write the cache file"):
        x, _ = load_mnist1d_arrays(directory=blocker / "sub")
    assert x.shape == (10, 40)
