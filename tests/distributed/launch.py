"""Run a function on N gloo ranks over 127.0.0.1, in spawned processes, with a time limit.

``run_ranks(fn, world=2, args=...)`` returns the per-rank results (rank order), or raises
AssertionError with every rank's traceback; a run past ``timeout`` is killed and fails the
test (a deadlock is a failure, never a hang).
"""

from __future__ import annotations

import io
import os
import queue
import socket
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(
    rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple[Any, ...], out: Any
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world)
    )
    try:
        import torch

        torch.set_num_threads(1)
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
        try:
            buf = io.BytesIO()  # bytes, not shared-memory tensors: this process exits next
            torch.save(fn(rank, *args), buf)
            out.put((rank, "ok", buf.getvalue()))
        finally:
            dist.destroy_process_group()
    except BaseException:  # reported to the parent, which fails the test
        out.put((rank, "error", traceback.format_exc()))


def run_ranks(
    fn: Callable[..., Any], *, world: int = 2, args: tuple[Any, ...] = (), timeout: float = 120.0
) -> list[Any]:
    """``fn(rank, *args)`` on ``world`` ranks; their return values in rank order."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    procs = [
        ctx.Process(target=_entry, args=(r, world, port, fn, args, out), daemon=True)
        for r in range(world)
    ]
    for p in procs:
        p.start()
    results: dict[int, tuple[str, Any]] = {}
    try:
        for _ in range(world):
            r, status, value = out.get(timeout=timeout)
            results[r] = (status, value)
    except queue.Empty:
        raise AssertionError(
            f"ranks {sorted(set(range(world)) - set(results))} did not finish within "
            f"{timeout} s (deadlock?); finished: {sorted(results)}"
        ) from None
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    errors = {r: v for r, (s, v) in results.items() if s == "error"}
    assert not errors, "\n".join(f"rank {r}:\n{tb}" for r, tb in sorted(errors.items()))
    import torch

    return [torch.load(io.BytesIO(results[r][1]), weights_only=False) for r in range(world)]
