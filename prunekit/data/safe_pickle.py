"""Load a (gzipped) pickle that holds one numpy array, without running arbitrary code.

Some datasets ship as pickled numpy arrays. Plain :func:`pickle.load` can execute any code a
file names, so prunekit never uses it. :func:`load_numpy_pickle` resolves only the handful of
globals that numpy's own array pickling uses (``_reconstruct``, ``ndarray``, ``dtype``); any
other global makes it fail with :class:`~prunekit.errors.DataError`. Arrays of Python objects
are refused too.
"""

from __future__ import annotations

import gzip
import importlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["load_numpy_pickle"]

# (module, name) pairs that numpy writes when pickling an ndarray. numpy >= 2 moved
# ``numpy.core`` to ``numpy._core``; files written by either version name one of them.
_ALLOWED: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("numpy.core.multiarray", "_reconstruct"): (
        ("numpy._core.multiarray", "numpy.core.multiarray"),
        "_reconstruct",
    ),
    ("numpy._core.multiarray", "_reconstruct"): (
        ("numpy._core.multiarray", "numpy.core.multiarray"),
        "_reconstruct",
    ),
    ("numpy", "ndarray"): (("numpy",), "ndarray"),
    ("numpy", "dtype"): (("numpy",), "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves numpy's array-reconstruction globals and nothing else."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise DataError(
                f"{self._source}: the pickle refers to {module}.{name}, which is not a numpy "
                "array component; prunekit only loads pickles of plain numpy arrays. Convert "
                "the file to .npz (numpy.savez) and load that instead."
            )
        modules, attr = target
        for candidate in modules:
            try:
                return getattr(importlib.import_module(candidate), attr)
            except (ImportError, AttributeError):
                continue
        raise DataError(  # pragma: no cover - every numpy has one of the two modules
            f"{self._source}: this numpy ({np.__version__}) has no {attr} in {modules}; "
            "upgrade numpy."
        )


def load_numpy_pickle(path: str | Path, *, compressed: bool = True) -> np.ndarray:
    """Load one numpy array from a pickle file, refusing anything but numpy arrays.

    Args:
        path: The file to read.
        compressed: ``True`` if the file is gzip-compressed (``.gz``).

    Returns:
        The array (numeric or boolean dtype).

    Raises:
        DataError: If the file is missing or corrupt, names any global other than numpy's
            array-reconstruction helpers, does not hold an ``ndarray``, or holds Python objects.

    Example:
        >>> import gzip, pickle, tempfile
        >>> from pathlib import Path
        >>> f = Path(tempfile.mkdtemp()) / "a.gz"
        >>> with gzip.open(f, "wb") as out:
        ...     pickle.dump(np.arange(4, dtype=np.uint8), out)
        >>> load_numpy_pickle(f).tolist()
        [0, 1, 2, 3]
    """
    source = str(path)
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            obj = _NumpyOnlyUnpickler(handle, source).load()
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(f"{source}: file not found; reinstall the package that ships it") from exc
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise DataError(
            f"{source}: not a readable {'gzipped ' if compressed else ''}pickle of a numpy "
            f"array ({type(exc).__name__}: {exc}); reinstall the package that ships it"
        ) from exc
    if not isinstance(obj, np.ndarray):
        raise DataError(
            f"{source}: expected a pickled numpy array, found {type(obj).__name__}; "
            "this loader reads single-array pickles only"
        )
    if obj.dtype.hasobject:
        raise DataError(
            f"{source}: the array has dtype {obj.dtype} (Python objects); only numeric "
            "arrays are loaded"
        )
    return obj
