"""Resolve ``python:MODULE_OR_FILE:FUNCTION`` references to callables (the user's factories)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = [
    "ResolveError",
    "import_callable",
    "call_with_accepted",
    "referenced_file",
    "source_digest",
]


class ResolveError(DataError):
    """A model or data source named by a recipe cannot be resolved (missing module, file,
    function or package, unreadable weights)."""


def _split(ref: str) -> tuple[str, str]:
    body = ref.removeprefix("python:")
    module, sep, func = body.rpartition(":")
    if not sep or not module or not func:
        raise ResolveError(f"{ref!r} must read python:MODULE:FUNCTION or python:./file.py:FUNCTION")
    return module, func


def _is_file(module: str) -> bool:
    return module.endswith(".py") or "/" in module or "\\" in module


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise ResolveError(f"python file {str(path)!r} does not exist; fix the path in the recipe")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"_prunekit_user_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ResolveError(f"cannot import {str(path)!r} as a Python module; is it a .py file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ResolveError(f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}") from exc
    return module


def import_callable(ref: str, base_dir: Path) -> Callable[..., Any]:
    """The function ``ref`` (``python:pkg.mod:fn`` or ``python:./file.py:fn``) names.

    File paths are relative to ``base_dir`` (the recipe's directory).

    Raises:
        ResolveError: the module, file or function does not exist or is not callable.

    Example:
        >>> from pathlib import Path
        >>> import_callable("python:math:sqrt", Path("."))(16.0)
        4.0
    """
    module_name, func = _split(ref)
    if _is_file(module_name):
        path = Path(module_name).expanduser()
        module = _load_file(path if path.is_absolute() else base_dir / path)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ResolveError(
                f"{ref!r}: cannot import module {module_name!r} ({exc}); install it, or point "
                "at a file with python:./file.py:FUNCTION"
            ) from exc
    target = getattr(module, func, None)
    if not callable(target):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ResolveError(
            f"{ref!r}: {module_name!r} has no function {func!r}; callables there: "
            f"{', '.join(found[:12]) or 'none'}"
        )
    return target  # type: ignore[no-any-return]


def call_with_accepted(fn: Callable[..., Any], offered: dict[str, Any], **kwargs: Any) -> Any:
    """Call ``fn(**kwargs)`` plus whichever of ``offered`` its signature accepts.

    Example:
        >>> call_with_accepted(lambda a, num_classes=2: (a, num_classes), {"num_classes": 5,
        ...                    "input_shape": (3,)}, a=1)
        (1, 5)
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    extra = {k: v for k, v in offered.items() if (var_kw or k in params) and k not in kwargs}
    return fn(**extra, **kwargs)


def referenced_file(ref: str, base_dir: Path) -> Path | None:
    """The file a ``python:./file.py:fn`` reference points at (``None``: not a file reference).

    Example:
        >>> referenced_file("python:./m.py:build", Path("/r")).as_posix(), referenced_file("mlp", Path("."))
        ('/r/m.py', None)
    """
    if not ref.startswith("python:"):
        return None
    body = ref.removeprefix("python:")
    module_name, sep, _ = body.rpartition(":")
    if not sep or not _is_file(module_name):
        return None
    path = Path(module_name).expanduser()
    return path if path.is_absolute() else base_dir / path


def source_digest(ref: str, base_dir: Path) -> str:
    """A hash of the file a ``python:./file.py:fn`` reference points at ('' otherwise).

    Part of the baseline cache key, so editing the factory retrains the baseline.
    """
    if not ref.startswith("python:"):
        return ""
    module_name, _ = _split(ref)
    if not _is_file(module_name):
        return module_name
    path = Path(module_name).expanduser()
    path = path if path.is_absolute() else base_dir / path
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
