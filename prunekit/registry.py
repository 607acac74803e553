"""One name -> callable registry for prunekit's extension points (datasets, models, schedules).

Unknown names raise :class:`~prunekit.errors.RegistryError` listing the valid ones; a second
registration under the same name raises unless ``override=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import ConfigError, RegistryError

__all__ = ["Registry"]

T = TypeVar("T")


def _same(name: str) -> str:
    return name


class Registry(Generic[T]):
    """Named callables of one kind.

    Args:
        kind: What the entries are, for messages (``"dataset"``).
        item: What an entry must be, for messages (``"a callable returning a RawDataset"``).
        normalize: Maps a user-given name to its key (e.g. case-folding).

    Example:
        >>> reg: Registry[object] = Registry("widget", "a callable", str.lower)
        >>> reg.register("Big", lambda: 1)
        'big'
        >>> reg.get("BIG")()
        1
        >>> reg.get("small")
        Traceback (most recent call last):
        ...
        prunekit.errors.RegistryError: unknown widget 'small'; valid names: big
    """

    def __init__(self, kind: str, item: str, normalize: Callable[[str], str] = _same) -> None:
        self.kind, self.item, self.normalize = kind, item, normalize
        self._entries: dict[str, T] = {}

    def _key(self, name: object) -> str:
        return self.normalize(name) if isinstance(name, str) else ""

    def register(self, name: str, entry: T, *, override: bool = False) -> str:
        """Add ``entry`` under ``name``; returns the key it is stored under."""
        key = self._key(name)
        if not key:
            raise RegistryError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if not callable(entry):
            raise ConfigError(
                f"{self.kind} {name!r} must be callable: it must be {self.item}, got "
                f"{type(entry).__name__}"
            )
        if key in self._entries and not override:
            raise RegistryError(
                f"{self.kind} {key!r} is already registered; pass override=True to replace it"
            )
        self._entries[key] = entry
        return key

    def get(self, name: object, hint: str = "") -> T:
        """The entry for ``name``; unknown names list the valid ones (then ``hint``)."""
        entry = self._entries.get(self._key(name))
        if entry is None:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}{hint}"
            )
        return entry

    def names(self) -> list[str]:
        """Every registered key, sorted."""
        return sorted(self._entries)

    def remove(self, name: str) -> None:
        """Drop ``name`` (e.g. after a doctest registered a throw-away entry)."""
        self._entries.pop(self._key(name), None)
