"""What a run has finished so far: resumable stage results and the Ctrl-C hand-off.

Each finished stage of :func:`prunekit.pipeline.run` stores its JSON result (and, for the
cut and the recovery, the model) under ``RUN_DIR/.resume/``, keyed by a hash of the recipe
and the mode. ``run(..., resume=True)`` reuses the stages whose results are there and match;
a search records every measured point in ``.resume/search/`` (its checkpoint), so an
interrupted search resumes point by point. An interrupted run writes ``metrics.json`` with
what it has and raises :class:`RunInterrupted`.
The trained baseline is cached separately (see :mod:`.baseline`), so it is always reused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import PrunekitError
from ..recipe import Recipe
from ..recipe.llm import LLMRecipe

__all__ = ["Progress", "RunInterrupted"]

_STATE = "state.json"


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run; what had finished is in ``run_dir`` (resume with ``resume=True``).

    A :class:`KeyboardInterrupt`, so code that lets Ctrl-C through still does.

    Example:
        >>> e = RunInterrupted("recover", ["baseline", "cut"], Path("runs/x"))
        >>> str(e)
        'interrupted during recover (finished: baseline, cut); partial results in runs/x'
    """

    def __init__(
        self, stage: str, finished: list[str], run_dir: Path, *, running: bool = True
    ) -> None:
        self.stage, self.finished, self.run_dir = stage, list(finished), run_dir
        done = f" (finished: {', '.join(finished)})" if finished else ""
        when = "during" if running else "after"
        super().__init__(f"interrupted {when} {stage}{done}; partial results in {run_dir}")

    def __str__(self) -> str:
        return str(self.args[0])


def _key(recipe: Recipe | LLMRecipe, mode: str) -> str:
    payload = json.dumps({"recipe": recipe.to_dict(), "mode": mode}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class Progress:
    """The finished stages of one run directory (see the module docstring).

    Example:
        >>> import tempfile
        >>> from prunekit.recipe import parse_recipe
        >>> r = parse_recipe("model: {name: mlp}\\ndata: {name: iris}\\nprune: {ratio: 0.5}\\n")
        >>> p = Progress.start(Path(tempfile.mkdtemp()), r, "prune", resume=False)
        >>> p.finish("evaluate baseline", {"accuracy": 0.9})
        >>> Progress.start(p.run_dir, r, "prune", resume=True).reuse("evaluate baseline")
        {'accuracy': 0.9}
    """

    run_dir: Path
    key: str
    results: dict[str, Any] = field(default_factory=dict)
    current: str = "start"
    running: bool = False
    reused: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.run_dir / ".resume"

    @classmethod
    def start(
        cls, run_dir: Path, recipe: Recipe | LLMRecipe, mode: str, *, resume: bool
    ) -> Progress:
        """The progress of ``run_dir``: the stored one when ``resume`` and it matches the
        recipe and mode, else a fresh one (stale results are removed)."""
        progress = cls(run_dir, _key(recipe, mode))
        state = progress.folder / _STATE
        if resume and state.is_file():
            stored = json.loads(state.read_text())
            if stored.get("key") == progress.key:
                progress.results = dict(stored.get("results", {}))
                return progress
        if progress.folder.exists():
            shutil.rmtree(progress.folder)
        return progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Mark ``name`` as the stage in progress (named by an interruption)."""
        self.current, self.running = name, True
        yield
        self.running = False

    def result(self, name: str) -> Any:
        """The stored result of stage ``name`` (``None``: not finished)."""
        return self.results.get(name)

    def reuse(self, name: str) -> Any:
        """:meth:`result`, noted as reused (for the run's log line) when there is one."""
        found = self.results.get(name)
        if found is not None and name not in self.reused:
            self.reused.append(name)
        return found

    def finish(self, name: str, result: Any) -> None:
        """Store stage ``name``'s JSON-able ``result`` (written atomically)."""
        self.results[name] = result
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"{_STATE}.tmp"
        tmp.write_text(json.dumps({"key": self.key, "results": self.results}, default=str))
        tmp.replace(self.folder / _STATE)

    def save_model(self, name: str, model: nn.Module, example: Any, plan: Any = None) -> bool:
        """Store a stage's model (replayable with :meth:`load_model`); whether it could be
        stored (a model that cannot be saved is simply rebuilt by a resumed run)."""
        from ..export import save

        try:
            save(copy.deepcopy(model), self.folder / name, plan=plan, example_inputs=example,
                 hf=False)  # fmt: skip
        except (PrunekitError, OSError, TypeError):
            shutil.rmtree(self.folder / name, ignore_errors=True)
            return False
        return True

    def load_model(self, name: str, factory: nn.Module) -> nn.Module | None:
        """The model stored by :meth:`save_model` (``None``: there is none, or it no longer
        loads, and the stage runs again)."""
        from ..export import load

        if not (self.folder / name / "model.safetensors").is_file():
            return None
        try:
            return load(self.folder / name, factory)
        except (PrunekitError, OSError):
            return None

    def interrupted(self) -> RunInterrupted:
        """Write ``metrics.json`` with the finished results; the error to raise."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        metrics = {k: v for k, v in self.results.items() if not k.startswith("_")}
        when = "during" if self.running else "after"
        metrics["interrupted"] = {when: self.current, "finished": list(self.results)}
        (self.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str))
        return RunInterrupted(self.current, list(self.results), self.run_dir, running=self.running)

    def clear(self) -> None:
        """Remove the stored stages (the run finished: its directory has everything)."""
        if self.folder.exists():
            shutil.rmtree(self.folder)
