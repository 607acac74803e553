"""The process group prunekit runs in: detected, or initialised from torchrun's environment.

prunekit never starts processes itself: ``torchrun`` (or any launcher that sets ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) does, and :func:`init_from_env` joins the
group it describes. Every other function works without a group (one process: rank 0 of 1),
so the same code runs alone and under torchrun.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from ..errors import ConfigError

__all__ = [
    "active",
    "barrier",
    "main_first",
    "init_from_env",
    "is_main",
    "launched_by_torchrun",
    "local",
    "main_only",
    "rank",
    "world_size",
]

T = TypeVar("T")

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


_LOCAL = [0]
"""Depth of :func:`local` blocks: inside one, this process works alone."""


def _initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


def active() -> bool:
    """Whether a ``torch.distributed`` process group with more than one rank is running
    (and this code is not inside a :func:`local` block)."""
    return not _LOCAL[0] and _initialised() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank for sharding (0 without a group, or inside :func:`local`)."""
    return dist.get_rank() if _initialised() and not _LOCAL[0] else 0


def world_size() -> int:
    """The number of ranks sharing the work (1 without a group, or inside :func:`local`)."""
    return dist.get_world_size() if _initialised() and not _LOCAL[0] else 1


def is_main() -> bool:
    """Whether this is rank 0, the rank that writes files and prints reports (also inside
    :func:`local`: the process's real rank decides)."""
    return not _initialised() or dist.get_rank() == 0


@contextmanager
def local() -> Iterator[None]:
    """Inside the block this process works alone: no collectives, no sharding (e.g. each
    rank trains the same baseline on all the data, deterministically)."""
    _LOCAL[0] += 1
    try:
        yield
    finally:
        _LOCAL[0] -= 1


def launched_by_torchrun() -> bool:
    """Whether the environment describes a process group (torchrun's variables are set)."""
    return all(k in os.environ for k in _ENV)


def init_from_env(*, backend: str | None = None, timeout_s: float = 600.0) -> bool:
    """Join the process group torchrun's environment describes; returns whether one is up.

    Does nothing (and returns ``True``) when a group is already initialised, and returns
    ``False`` when the environment describes none (a plain ``python`` run). The backend is
    ``nccl`` when CUDA is available, else ``gloo``.

    Raises:
        ConfigError: The environment names a group that cannot be joined (the message
            names the variables and the backend).

    Example:
        >>> init_from_env() if "RANK" not in __import__("os").environ else False
        False
    """
    if dist.is_available() and dist.is_initialized():
        return True
    if not launched_by_torchrun():
        return False
    if not dist.is_available():
        raise ConfigError("torchrun set RANK/WORLD_SIZE but this torch has no torch.distributed")
    chosen = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    try:
        dist.init_process_group(chosen, timeout=timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as exc:
        env = {k: os.environ.get(k) for k in _ENV}
        raise ConfigError(
            f"cannot join the process group {env} with backend {chosen!r}: {exc}; check that "
            "every rank was started by the same torchrun command"
        ) from exc
    if chosen == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def barrier() -> None:
    """Wait for every rank (no-op without a group)."""
    if active():
        dist.barrier()


def main_only(fn: Callable[..., T]) -> Callable[..., T | None]:
    """Decorate ``fn`` to run on rank 0 only (other ranks get ``None``): file writes,
    reports, checkpoints.

    Example:
        >>> @main_only
        ... def save(x): return x * 2
        >>> save(21)
        42
    """

    def wrapped(*args: Any, **kwargs: Any) -> T | None:
        return fn(*args, **kwargs) if is_main() else None

    wrapped.__name__ = getattr(fn, "__name__", "main_only")
    wrapped.__doc__ = fn.__doc__
    return wrapped


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it, each alone (:func:`local`:
    no collectives inside), e.g. rank 0 trains and caches a baseline, the others then load
    it. Alone: just the block."""
    if not active():
        yield
        return
    if not is_main():
        dist.barrier()
    try:
        with local():
            yield
    finally:
        if is_main():
            dist.barrier()
