"""How the CLI talks: stage lines and tables on stderr (rich), JSON on stdout, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError, DataError, PrunekitError

if TYPE_CHECKING:
    from ..pipeline import RunInterrupted

__all__ = ["EXIT_CODES", "INTERRUPTED", "Output", "exit_code", "fail_on_errors", "interrupt_exit"]

INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT, as shells report it)."""

EXIT_CODES = {
    0: "success",
    1: "the run failed (pruning, recovery, export ...)",
    2: "bad recipe or usage (unknown key, wrong type, missing file)",
    3: "the model or data cannot be resolved (module, function, package, weights)",
    INTERRUPTED: "interrupted (Ctrl-C); what finished is kept, --resume continues",
}


def exit_code(exc: BaseException) -> int:
    """The exit code for an error (see :data:`EXIT_CODES`).

    Example:
        >>> from prunekit.errors import RecipeError, DataError, RecoveryError
        >>> exit_code(RecipeError("x")), exit_code(DataError("y")), exit_code(RecoveryError("z"))
        (2, 3, 1)
    """
    if isinstance(exc, ConfigError):
        return 2
    if isinstance(exc, DataError):
        return 3
    return 1


@dataclass
class Output:
    """The CLI's global flags and its consoles (human output goes to stderr)."""

    quiet: bool = False
    json: bool = False

    @property
    def console(self) -> Console:
        return Console(stderr=True, quiet=self.quiet, highlight=False)

    @property
    def progress(self) -> bool:
        """Whether progress bars are shown."""
        return not self.quiet and not self.json

    def say(self, message: str) -> None:
        """One status line (hidden by ``--quiet``)."""
        self.console.print(f"[dim]·[/dim] {message}")

    def warn(self, message: str) -> None:
        """One warning line on stderr (shown even with ``--quiet``)."""
        sys.stderr.write(f"warning: {message}\n")

    def table(self, title: str, header: list[str], rows: list[list[str]]) -> None:
        """A rich table on stderr (hidden by ``--quiet``)."""
        table = Table(title=title, title_justify="left")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

    def result(self, data: dict[str, Any], text: str = "") -> None:
        """The command's result: JSON on stdout with ``--json``, else ``text`` on stdout."""
        if self.json:
            sys.stdout.write(json.dumps(data, indent=1, default=str) + "\n")
        elif text and not self.quiet:
            sys.stdout.write(text + "\n")


@contextmanager
def fail_on_errors(out: Output) -> Iterator[None]:
    """Turn prunekit errors into one message on stderr and the documented exit code."""
    try:
        yield
    except PrunekitError as exc:
        code = exit_code(exc)
        kind = type(exc).__name__
        if out.json:
            sys.stdout.write(json.dumps({"error": kind, "message": str(exc), "exit_code": code}))
            sys.stdout.write("\n")
        sys.stderr.write(f"error ({kind}): {exc}\n")  # unwrapped: one line per problem
        raise typer.Exit(code) from None


def interrupt_exit(out: Output, exc: RunInterrupted, again: str) -> NoReturn:
    """Report a Ctrl-C'd run in one line (``again``: the command that resumes it) and exit
    with :data:`INTERRUPTED`."""
    if out.json:
        data = {"error": "interrupted", "stage": exc.stage, "finished": exc.finished,
                "run_dir": str(exc.run_dir), "exit_code": INTERRUPTED}  # fmt: skip
        sys.stdout.write(json.dumps(data) + "\n")
    resume = f"; resume with: {again}" if again and exc.finished else ""
    sys.stderr.write(f"{exc}{resume}\n")
    raise typer.Exit(INTERRUPTED)
