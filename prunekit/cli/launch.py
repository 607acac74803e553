"""``prunekit prune recipe.yaml --nproc N``: re-run the same command under torchrun.

A convenience only: it replaces this process with ``python -m torch.distributed.run
--nproc_per_node N -m prunekit <the same arguments without --nproc>`` on this machine
(127.0.0.1, a free port). For several machines call torchrun yourself (docs/DISTRIBUTED.md).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Annotated

import typer

__all__ = ["NprocOpt", "relaunch", "relaunch_command"]

NprocOpt = Annotated[
    int,
    typer.Option(
        "--nproc",
        min=1,
        help="Run on N processes of this machine (re-runs the command under torchrun; "
        "gloo on CPU, NCCL on GPU): calibration, recovery and search are shared, one report.",
    ),
]


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        out.append(arg)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relaunch_command(nproc: int, argv: list[str]) -> list[str]:
    """The torchrun command line that runs ``argv`` (``sys.argv[1:]``) on ``nproc`` ranks.

    Example:
        >>> relaunch_command(2, ["prune", "r.yaml", "--nproc", "2"])[-3:]
        ['prunekit', 'prune', 'r.yaml']
    """
    return [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
        "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), "-m", "prunekit", *_without_nproc(argv),
    ]  # fmt: skip


def relaunch(nproc: int) -> None:
    """Replace this process by the same command under torchrun when ``nproc > 1`` and this
    process is not already one of torchrun's ranks; otherwise return."""
    if nproc <= 1 or "RANK" in os.environ:
        return
    cmd = relaunch_command(nproc, sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
