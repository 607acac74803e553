"""A recipe run under ``torchrun``: every rank runs every stage (the collectives inside
scoring, recovery and search keep them identical), and only rank 0 writes the run directory.

Ranks other than 0 work in a private temporary directory that is removed afterwards; when
resuming they start from a copy of rank 0's resumable stages, so every rank reuses the same
stages (a rank that recomputed a stage the others reused would wait forever in its
collectives). Without torchrun: the run directory itself, nothing else happens.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from .. import distributed

__all__ = ["ddp_training", "rank_directory"]

RESUME_FOLDER = ".resume"


@contextmanager
def rank_directory(run_dir: Path, *, resume: bool) -> Iterator[Path]:
    """The directory this rank writes: ``run_dir`` on rank 0 (and alone), else a private
    temporary one (with a copy of rank 0's ``.resume`` folder when ``resume``)."""
    distributed.init_from_env()
    if distributed.is_main():
        yield run_dir
        distributed.barrier()
        return
    own = Path(tempfile.mkdtemp(prefix=f"prunekit-rank{distributed.rank()}-"))
    try:
        stored = run_dir / RESUME_FOLDER
        if resume and stored.is_dir():
            shutil.copytree(stored, own / RESUME_FOLDER)
        yield own
        distributed.barrier()
    finally:
        shutil.rmtree(own, ignore_errors=True)


@contextmanager
def ddp_training(
    model: nn.Module, train: Iterable[Any], val: Iterable[Any] | None
) -> Iterator[tuple[nn.Module, Iterable[Any], Iterable[Any] | None]]:
    """Under torchrun: ``model`` wrapped in ``DistributedDataParallel`` and each rank's
    shard of the training batches (every ``world_size``-th batch, whole rounds only, so
    every rank takes the same number of steps); every rank validates on all of ``val``
    (the same metric everywhere, so the same best epoch and early stop). Alone, or with
    fewer training batches than ranks (each rank then trains alike on all of them): the
    arguments unchanged."""
    part = distributed.shard(train, even=True)
    if not distributed.active() or len(part) == 0:
        yield model, train, val
        return
    yield nn.parallel.DistributedDataParallel(model), part, val
