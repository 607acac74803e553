"""Built-in real datasets that ship inside installed packages (no downloads).

``load_dataset(name, seed=...)`` returns stratified train/val/test splits of any registered
set; ``available_datasets()`` lists them. :func:`load_digits` is the older two-way digits
loader the demo uses. Text for language models: ``load_text("shakespeare", tokenizer=...,
split="calibration" | "evaluation")`` (works split by whole work, :mod:`.text`), with
:func:`token_windows` and :func:`calibration_batch`.
"""

from prunekit.data.cache import CACHE_ENV, cache_dir
from prunekit.data.digits import DIGITS_NUM_CLASSES, DIGITS_SHAPE, load_digits
from prunekit.data.registry import available_datasets, load_dataset, register_dataset
from prunekit.data.safe_pickle import load_numpy_pickle
from prunekit.data.sources import ANIMAL_CLASSES, RawDataset
from prunekit.data.splits import DatasetSplits, Loaders, make_splits, stratified_indices
from prunekit.data.text import (
    TextSource,
    available_text_datasets,
    calibration_batch,
    load_text,
    register_text_dataset,
    text_works,
    token_windows,
)

__all__ = [
    "ANIMAL_CLASSES",
    "CACHE_ENV",
    "DIGITS_NUM_CLASSES",
    "DIGITS_SHAPE",
    "DatasetSplits",
    "Loaders",
    "RawDataset",
    "TextSource",
    "available_datasets",
    "available_text_datasets",
    "cache_dir",
    "calibration_batch",
    "load_dataset",
    "load_digits",
    "load_numpy_pickle",
    "load_text",
    "make_splits",
    "register_dataset",
    "register_text_dataset",
    "stratified_indices",
    "text_works",
    "token_windows",
]
