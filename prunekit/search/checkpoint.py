"""Search checkpoints: one JSON record per measured point, written atomically, resumable.

Layout of a checkpoint directory::

    search.json        format, settings fingerprint, baseline
    points/00000.json  one record per measured point: the point, its cut plan(s)
    best_plan.json     the chosen-so-far point and plan (updated after every point)
    result.json        the final result (without the model), written when the search ends

A rerun with the same directory and the same settings reuses every recorded point instead
of measuring it again; different settings raise a :class:`~prunekit.errors.SearchError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..errors import ConfigError, SearchError

__all__ = ["SearchCheckpoint", "atomic_write_json", "model_fingerprint", "inputs_fingerprint"]

CHECKPOINT_FORMAT = 1


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and ``os.replace``.

    A reader (or a rerun after a kill) sees the old file or the new one, never half of one.
    Under torchrun only rank 0 writes (every rank holds the same records in memory).

    Example:
        >>> import tempfile, json
        >>> from pathlib import Path
        >>> d = Path(tempfile.mkdtemp())
        >>> atomic_write_json(d / "a.json", {"x": 1})
        >>> json.loads((d / "a.json").read_text()), sorted(p.name for p in d.iterdir())
        ({'x': 1}, ['a.json'])
    """
    if not distributed.is_main():
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the state dict: names, shapes, dtypes and values.

    Example:
        >>> import torch
        >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        >>> b.load_state_dict(a.state_dict())
        <All keys matched successfully>
        >>> model_fingerprint(a) == model_fingerprint(b), len(model_fingerprint(a))
        (True, 64)
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def inputs_fingerprint(example_inputs: Any) -> Any:
    """Shapes and dtypes of the tensors in ``example_inputs`` (a JSON-able structure).

    Example:
        >>> import torch
        >>> inputs_fingerprint((torch.zeros(2, 3), {"mask": torch.ones(2, dtype=torch.bool)}))
        [['2x3', 'torch.float32'], {'mask': ['2', 'torch.bool']}]
    """
    if isinstance(example_inputs, torch.Tensor):
        return ["x".join(map(str, example_inputs.shape)), str(example_inputs.dtype)]
    if isinstance(example_inputs, (list, tuple)):
        return [inputs_fingerprint(x) for x in example_inputs]
    if isinstance(example_inputs, dict):
        return {str(k): inputs_fingerprint(v) for k, v in example_inputs.items()}
    return repr(example_inputs)


def _diff(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out += _diff(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))
        return out
    if old != new:
        shown = [json.dumps(v)[:80] for v in (old, new)]
        return [f"{where or 'settings'}: {shown[0]} -> {shown[1]}"]
    return []


class SearchCheckpoint:
    """The records of one search, kept in memory and, with a directory, on disk.

    Args:
        directory: where to keep the records (``None``: in memory only).
        settings: the search settings; a directory written with other settings is refused.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> ck = SearchCheckpoint(d, {"tolerance": 0.01})
        >>> ck.put("a|0.5", {"point": {"index": 0}})
        >>> SearchCheckpoint(d, {"tolerance": 0.01}).get("a|0.5")
        {'point': {'index': 0}}
        >>> SearchCheckpoint(d, {"tolerance": 0.02})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        prunekit.errors.SearchError: checkpoint ... (tolerance: 0.01 -> 0.02); ...
    """

    def __init__(self, directory: str | Path | None, settings: dict[str, Any]) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.settings = json.loads(json.dumps(settings))  # as it reads back from disk
        self.records: dict[str, dict[str, Any]] = {}
        self.baseline: dict[str, Any] | None = None
        if self.directory is not None:
            self._open(self.directory)

    def _open(self, directory: Path) -> None:
        if directory.exists() and not directory.is_dir():
            raise ConfigError(
                f"checkpoint={str(directory)!r} is a file; pass a directory (it is created)"
            )
        head = directory / "search.json"
        if head.exists():
            self._load(directory, head)
            return
        (directory / "points").mkdir(parents=True, exist_ok=True)
        self._write_head()

    def _load(self, directory: Path, head: Path) -> None:
        try:
            data = json.loads(head.read_text())
            records = [
                json.loads(p.read_text()) for p in sorted((directory / "points").glob("*.json"))
            ]
        except (OSError, json.JSONDecodeError) as exc:
            raise SearchError(
                f"checkpoint {str(directory)!r} cannot be read ({exc}); delete the directory "
                "or pass a new checkpoint= to start fresh"
            ) from exc
        if data.get("format") != CHECKPOINT_FORMAT:
            raise SearchError(
                f"checkpoint {str(directory)!r} has format {data.get('format')!r}, this version "
                f"reads {CHECKPOINT_FORMAT}; pass a new checkpoint= directory to start fresh"
            )
        changes = _diff(data.get("settings"), self.settings)
        if changes:
            raise SearchError(
                f"checkpoint {str(directory)!r} was written by a search with other settings ("
                + "; ".join(changes[:5])
                + "); rerun with the same settings to resume, or pass a new checkpoint= "
                "directory (or delete this one) to start fresh"
            )
        self.baseline = data.get("baseline")
        self.records = {r["key"]: r["record"] for r in records}

    def _write_head(self) -> None:
        if self.directory is not None:
            head = {
                "format": CHECKPOINT_FORMAT,
                "settings": self.settings,
                "baseline": self.baseline,
            }
            atomic_write_json(self.directory / "search.json", head)

    def set_baseline(self, baseline: dict[str, Any]) -> None:
        """Record the unpruned model's measurements."""
        self.baseline = dict(baseline)
        self._write_head()

    def get(self, key: str) -> dict[str, Any] | None:
        """The record stored under ``key``, if that point was measured."""
        return self.records.get(key)

    def __len__(self) -> int:
        return len(self.records)

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store a point's record (and write it at once when there is a directory)."""
        index = len(self.records)
        self.records[key] = record
        if self.directory is not None:
            path = self.directory / "points" / f"{index:05d}.json"
            atomic_write_json(path, {"key": key, "record": record})

    def write(self, name: str, data: dict[str, Any]) -> None:
        """Write ``<directory>/<name>.json`` atomically (nothing without a directory)."""
        if self.directory is not None:
            atomic_write_json(self.directory / f"{name}.json", data)
