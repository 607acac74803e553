"""Where prunekit keeps files it generates locally (never downloads): the user cache directory.

The directory is, in order of precedence:

1. ``$PRUNEKIT_CACHE`` when set (used as is);
2. ``$XDG_CACHE_HOME/prunekit`` when ``XDG_CACHE_HOME`` is set;
3. ``~/.cache/prunekit``.

It is created on first write, not on lookup.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["CACHE_ENV", "cache_dir", "save_npz_atomic"]

CACHE_ENV = "PRUNEKIT_CACHE"
"""Environment variable that overrides the cache directory."""


def cache_dir() -> Path:
    """Return prunekit's cache directory (see the module docstring for the lookup order).

    Returns:
        The directory path; it may not exist yet.

    Example:
        >>> import os
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"PRUNEKIT_CACHE": "/tmp/pk-cache"}):
        ...     print(cache_dir())
        /tmp/pk-cache
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "prunekit"


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` as ``.npz`` so readers never see a half-written file.

    The file is written under a temporary name in the same directory and then renamed over
    ``path`` (an atomic replace on POSIX and Windows); parent directories are created.

    Args:
        path: Target file, normally ending in ``.npz``.
        **arrays: Named arrays to store (plain numeric arrays; no pickled objects).

    Raises:
        OSError: If the directory cannot be created or written.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "sub" / "a.npz"
        >>> save_npz_atomic(target, x=np.arange(3))
        >>> np.load(target, allow_pickle=False)["x"].tolist()
        [0, 1, 2]
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
