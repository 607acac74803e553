"""Checkpoint of a running benchmark, one entry per finished (task, seed), for ``--resume``.

A full run takes hours on 2 cores; an interruption (a session ending, a killed job) must not
lose the seeds already measured. After each (task, seed) the rows so far are written to
``partial-<tag>.json`` next to the results (atomically: a temporary file, then a rename).
``--resume`` reuses them only when the configuration and the commit are the same as the run
that wrote them, so a results file never mixes code versions or protocols; the checkpoint is
deleted once the results file is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prunekit.errors import ConfigError

__all__ = ["Checkpoint"]


class Checkpoint:
    """Rows of finished (task, seed) pairs of one run, kept on disk.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "partial-x.json"
        >>> ck = Checkpoint.open(path, {"commit": "abc"}, resume=False)
        >>> ck.save("t4", 0, [{"method": "unpruned"}], elapsed_s=2.0)
        >>> Checkpoint.open(path, {"commit": "abc"}, resume=True).rows("t4", 0)
        [{'method': 'unpruned'}]
    """

    def __init__(self, path: Path, key: dict[str, Any], done: dict[str, Any], elapsed: float):
        self.path = path
        self.key = key
        self.done = done
        self.elapsed_s = elapsed

    @classmethod
    def open(cls, path: Path, key: dict[str, Any], *, resume: bool) -> Checkpoint:
        """A fresh checkpoint, or with ``resume`` the one at ``path`` if it matches ``key``.

        Raises:
            ConfigError: ``resume`` with a checkpoint from another configuration or commit,
                or from uncommitted code (whose content the commit does not pin).
        """
        key = json.loads(json.dumps(key))  # tuples -> lists, as they come back from disk
        if not resume or not path.exists():
            return cls(path, key, {}, 0.0)
        saved = json.loads(path.read_text())
        if saved.get("key") != key:
            differ = sorted(k for k in {*key, *saved.get("key", {})}
                            if key.get(k) != saved.get("key", {}).get(k))  # fmt: skip
            raise ConfigError(
                f"--resume: {path} was written by a run with a different {differ} (e.g. commit "
                f"{saved.get('key', {}).get('commit')!r}, now {key.get('commit')!r}); rerun "
                "with the same arguments at that commit, or without --resume to start over"
            )
        if str(key.get("commit", "")).endswith("+dirty"):
            raise ConfigError(
                f"--resume: {path} was written from uncommitted changes, which the commit "
                "does not pin; commit them and rerun without --resume"
            )
        return cls(path, key, saved.get("done", {}), float(saved.get("elapsed_s", 0.0)))

    @staticmethod
    def _name(task: str, seed: int) -> str:
        return f"{task}|{seed}"

    def rows(self, task: str, seed: int) -> list[dict[str, Any]] | None:
        """The saved rows of ``(task, seed)``, or ``None`` if that pair has not finished."""
        return self.done.get(self._name(task, seed))

    def save(self, task: str, seed: int, rows: list[dict[str, Any]], *, elapsed_s: float) -> None:
        """Record a finished ``(task, seed)`` and the time it took; rewrite the file."""
        self.done[self._name(task, seed)] = rows
        self.elapsed_s += elapsed_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = {"key": self.key, "done": self.done, "elapsed_s": self.elapsed_s}
        tmp.write_text(json.dumps(body))
        os.replace(tmp, self.path)

    def finish(self) -> None:
        """The run is complete and its results written: remove the checkpoint."""
        self.path.unlink(missing_ok=True)
