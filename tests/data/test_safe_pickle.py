"""The numpy-only unpickler loads arrays and refuses everything else without running it."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from prunekit.data import load_numpy_pickle
from prunekit.errors import DataError

CALLS: list[str] = []


def _record(tag: str) -> None:
    CALLS.append(tag)


class Exploit:
    """Unpickling this would call ``_record`` (a stand-in for os.system)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_record, ("ran",))


def _write(path: Path, obj: object, *, compressed: bool = True) -> Path:
    opener = gzip.open if compressed else open
    with opener(path, "wb") as out:
        pickle.dump(obj, out, protocol=4)
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32])
def test_round_trips_numeric_arrays(tmp_path: Path, dtype: type) -> None:
    array = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    loaded = load_numpy_pickle(_write(tmp_path / "a.gz", array))
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)


def test_uncompressed_files(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.pkl", np.ones(3), compressed=False)
    assert load_numpy_pickle(path, compressed=False).tolist() == [1.0, 1.0, 1.0]


def test_refuses_foreign_globals_without_calling_them(tmp_path: Path) -> None:
    CALLS.clear()
    path = _write(tmp_path / "evil.gz", Exploit())
    with pytest.raises(DataError, match=r"_record, which is not a numpy array component"):
        load_numpy_pickle(path)
    assert CALLS == []


def test_refuses_object_arrays_and_non_arrays(tmp_path: Path) -> None:
    objects = np.array(["a", 1], dtype=object)
    with pytest.raises(DataError, match="Python objects"):
        load_numpy_pickle(_write(tmp_path / "o.gz", objects))
    with pytest.raises(DataError, match="found list"):
        load_numpy_pickle(_write(tmp_path / "l.gz", [1, 2, 3]))


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_numpy_pickle(tmp_path / "nope.gz")
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzipped pickle"):
        load_numpy_pickle(bad)
