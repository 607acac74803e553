"""YAML loading that remembers where every key was written (``yaml.safe_load`` semantics).

:func:`load_marked` returns the plain data ``yaml.safe_load`` would, plus a map from each
key's path (``("prune", "importance")``, list items by index) to its 1-based line, so a
validation error can say ``recipe.yaml:12: prune.importance: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import RecipeError

__all__ = ["Marked", "load_marked"]

Path_ = tuple[str | int, ...]


@dataclass
class Marked:
    """Loaded YAML data with the line of every key.

    Attributes:
        data: What ``yaml.safe_load`` returns for the text.
        lines: ``{key path: 1-based line}``; the empty path is the document's first line.
        source: Name of the text's file (for messages).

    Example:
        >>> m = load_marked("a: 1\\nb:\\n  c: [x, y]\\n", "r.yaml")
        >>> m.data, m.line(("b", "c", 1)), m.where(("b", "c"))
        ({'a': 1, 'b': {'c': ['x', 'y']}}, 3, 'r.yaml:3')
    """

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    source: str = "<recipe>"

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest recorded parent (``None``: unknown)."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None

    def where(self, path: Path_) -> str:
        """``source:line`` for ``path`` (just ``source`` when no line is known)."""
        line = self.line(path)
        return self.source if line is None else f"{self.source}:{line}"


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            lines.setdefault((*path, key), key_node.start_mark.line + 1)
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.setdefault((*path, i), item.start_mark.line + 1)
            _walk(item, (*path, i), lines)


def load_marked(text: str, source: str = "<recipe>") -> Marked:
    """Parse YAML ``text`` safely and record the line of every key.

    Args:
        text: The YAML document.
        source: The file name used in messages.

    Returns:
        A :class:`Marked` (``data`` is ``None`` for an empty document).

    Raises:
        RecipeError: The text is not valid YAML (the message has the line and column).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(
            f"{where}: not valid YAML ({problem}); fix the syntax there (indent with spaces, "
            "'key: value' pairs)"
        ) from exc
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines)
    return Marked(data, lines, source)
