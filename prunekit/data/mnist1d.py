"""MNIST-1D generated locally (Greydanus 2020), cached as ``.npz`` in prunekit's cache directory.

``mnist1d.data.make_dataset(get_dataset_args())`` builds the canonical 5000 signals of length
40 (10 classes) from ten hand-written templates with a fixed seed (42); it downloads nothing.
Generation takes a few seconds, so the arrays are written once to
``cache_dir() / "mnist1d-<key>.npz"`` (see :func:`prunekit.data.cache.cache_dir`; override
the directory with ``PRUNEKIT_CACHE``) and reused; ``<key>`` hashes the installed mnist1d
version, so upgrading the generator never reads a stale file. Within one process the arrays are
also kept in memory.

The generator's own 4000/1000 train/test split is pooled: prunekit splits the 5000 samples
itself (stratified, by seed), like every other built-in set. The generator already centres
the signals and scales them to unit standard deviation with one global scalar each, so no
further standardisation is applied.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import random
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cache import cache_dir, save_npz_atomic
from .sources import RawDataset, import_optional

__all__ = ["MNIST1D_LENGTH", "generate_mnist1d", "load_mnist1d_arrays", "mnist1d_source"]

MNIST1D_LENGTH = 40
"""Length of one MNIST-1D signal (``final_seq_length`` of the default generator settings)."""

_INSTALL = "pip install mnist1d"
_FORMAT = 1  # bump when the cached layout changes
_MEMO: dict[Path, tuple[np.ndarray, np.ndarray]] = {}


def _generator_version() -> str:
    """The installed mnist1d version, found without importing it (importing takes ~1 s)."""
    try:
        return importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError as exc:
        raise DataError(
            f"dataset 'mnist1d' needs the 'mnist1d' package, which is not installed; install "
            f"it with: {_INSTALL}"
        ) from exc


def _cache_file(directory: Path) -> Path:
    """Cache file for the installed generator's default settings."""
    text = json.dumps({"format": _FORMAT, "mnist1d": _generator_version()}, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    return directory / f"mnist1d-{key}.npz"


def generate_mnist1d() -> tuple[np.ndarray, np.ndarray]:
    """Generate the canonical MNIST-1D signals in memory (no cache, no download).

    ``make_dataset`` seeds Python's and numpy's global random generators; their states are
    restored afterwards, so calling this does not disturb the caller's randomness.

    Returns:
        ``(x, y)``: ``float32`` signals ``(5000, 40)`` and ``int64`` labels ``(5000,)``, the
        generator's train part followed by its test part.

    Raises:
        DataError: If mnist1d (or its dependencies scipy/matplotlib/requests) is missing.

    Example:
        >>> x, y = generate_mnist1d()  # doctest: +SKIP
        >>> x.shape, y.shape  # doctest: +SKIP
        ((5000, 40), (5000,))
    """
    data = import_optional("mnist1d.data", dataset="mnist1d", install=_INSTALL)
    args = data.get_dataset_args()
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        made = data.make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x = np.concatenate([made["x"], made["x_test"]]).astype(np.float32)
    y = np.concatenate([made["y"], made["y_test"]]).astype(np.int64)
    return x, y


def _read_cache(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or ``None`` if the file is missing or unusable (then regenerate)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            x, y = stored["x"], stored["y"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if x.dtype != np.float32 or y.dtype != np.int64 or x.ndim != 2 or y.shape != x.shape[:1]:
        return None
    return x, y


def load_mnist1d_arrays(
    *, directory: str | Path | None = None, use_cache: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST-1D from the cache, generating and caching it on first use.

    Args:
        directory: Cache directory; default :func:`~prunekit.data.cache.cache_dir`.
        use_cache: ``False`` generates afresh and neither reads nor writes any file.

    Returns:
        ``(x, y)`` as from :func:`generate_mnist1d`.

    Raises:
        DataError: If mnist1d is not installed (``pip install mnist1d``).

    Warns:
        UserWarning: If the cache file cannot be written (the data is still returned).

    Example:
        >>> import tempfile
        >>> x, y = load_mnist1d_arrays(directory=tempfile.mkdtemp())  # doctest: +SKIP
        >>> x.shape  # doctest: +SKIP
        (5000, 40)
    """
    if not use_cache:
        return generate_mnist1d()
    path = _cache_file(Path(directory) if directory is not None else cache_dir())
    cached = _read_cache(path)
    if cached is not None:
        return cached
    x, y = generate_mnist1d()
    try:
        save_npz_atomic(path, x=x, y=y)
    except OSError as exc:
        warnings.warn(
            f"mnist1d: could not write the cache file {path} ({exc}); the data is regenerated "
            "on every load. Set PRUNEKIT_CACHE to a writable directory to cache it.",
            UserWarning,
            stacklevel=2,
        )
    return x, y


def mnist1d_source() -> RawDataset:
    """MNIST-1D as a raw dataset: signals ``(1, 40)``, 10 digit classes.

    Arrays are memoised per cache file within the process.

    Returns:
        The raw dataset (5000 samples).

    Raises:
        DataError: If mnist1d is not installed (``pip install mnist1d``), or the arrays do not
            have the expected shape.

    Example:
        >>> raw = mnist1d_source()  # doctest: +SKIP
        >>> raw.input_shape, raw.num_classes  # doctest: +SKIP
        ((1, 40), 10)
    """
    key = _cache_file(cache_dir())
    if key not in _MEMO:
        x, y = load_mnist1d_arrays()
        if x.shape[1:] != (MNIST1D_LENGTH,):
            raise DataError(
                f"mnist1d: expected signals of length {MNIST1D_LENGTH}, got shape {x.shape}; "
                f"reinstall the generator with: pip install --force-reinstall mnist1d"
            )
        x.setflags(write=False)
        y.setflags(write=False)
        _MEMO[key] = (x, y)
    x, y = _MEMO[key]
    names = tuple(str(d) for d in range(10))
    return RawDataset(x.reshape(-1, 1, MNIST1D_LENGTH).copy(), y.copy(), names)
