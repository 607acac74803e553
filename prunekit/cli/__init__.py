"""The ``prunekit`` command line (typer): ``prunekit --help`` lists the commands.

Exit codes: 0 success; 1 the run failed; 2 bad recipe or usage; 3 the model or data cannot
be resolved. ``--quiet`` prints only errors; ``--json`` writes one JSON summary to stdout.
"""

from __future__ import annotations

from .app import app
from .output import EXIT_CODES, exit_code

__all__ = ["EXIT_CODES", "app", "exit_code", "main"]


def main() -> None:
    """Console entry point (``prunekit = prunekit.cli:main``)."""
    app()
