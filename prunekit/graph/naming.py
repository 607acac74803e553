"""Readable names for dependency groups.

A model's repeated blocks live in numbered containers (``encoder.layer.3``, ``layer1.0``,
``h.11``): a *stack* is such a container, its *blocks* the numbered children. A group whose
members sit in two or more blocks of one stack runs through them: it is a residual stream
(a transformer's hidden size, a ResNet stage's channels); one that reaches every block of
its stack spans the whole stream, so cutting it narrows the whole stack. It is a
*model-wide* stream when the stacks it spans whole hold more than half of all the model's
numbered blocks: a transformer's hidden size (every block of ``layers``), not a ResNet
stage (``layer1`` holds a third of the blocks).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = ["block_of", "block_stacks", "stacks_of", "group_label", "is_model_stream"]


class _Member(Protocol):
    name: str
    dim: int


def block_of(name: str) -> tuple[str, int] | None:
    """``("encoder.layer", 3)`` for ``"encoder.layer.3.attn.q.weight"``: the outermost
    numbered path component and the container it indexes (``None`` if there is none)."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit() and i > 0:
            return ".".join(parts[:i]), int(part)
    return None


def stacks_of(names: Iterable[str]) -> dict[str, set[int]]:
    """Every stack of the model (from its tensor names) and the block indices it holds."""
    out: dict[str, set[int]] = defaultdict(set)
    for name in names:
        block = block_of(name)
        if block is not None:
            out[block[0]].add(block[1])
    return dict(out)


def block_stacks(names: Iterable[str]) -> dict[str, set[int]]:
    """Like :func:`stacks_of`, counting only blocks that are containers (``layers.3.fc.weight``:
    a module inside block 3), not single layers of a ``Sequential`` (``features.3.weight``).

    Example:
        >>> block_stacks(["layers.0.fc.weight", "layers.1.fc.weight", "features.0.weight"])
        {'layers': {0, 1}}
    """
    out: dict[str, set[int]] = defaultdict(set)
    for name in names:
        block = block_of(name)
        if block is not None and name.count(".") - block[0].count(".") >= 3:
            out[block[0]].add(block[1])
    return dict(out)


def _touched(members: Sequence[_Member]) -> dict[str, set[int]]:
    touched: dict[str, set[int]] = defaultdict(set)
    for m in members:
        block = block_of(m.name)
        if block is not None:
            touched[block[0]].add(block[1])
    return touched


def is_model_stream(members: Sequence[_Member], stacks: dict[str, set[int]]) -> bool:
    """Whether a group is a model-wide residual stream: the stacks whose every block it
    reaches (two or more) hold more than half of all the model's numbered blocks
    (``stacks``: :func:`block_stacks` of the model's tensor names).

    Example:
        >>> from types import SimpleNamespace as M
        >>> stacks = {"layers": {0, 1, 2}}
        >>> is_model_stream([M(name=f"layers.{i}.fc.weight", dim=1) for i in range(3)], stacks)
        True
        >>> stacks = {"layer1": {0, 1, 2}, "layer2": {0, 1, 2}, "layer3": {0, 1, 2}}
        >>> is_model_stream([M(name=f"layer1.{i}.conv.weight", dim=0) for i in range(3)], stacks)
        False
    """
    total = sum(len(blocks) for blocks in stacks.values())
    spanned = sum(
        len(stacks[stack])
        for stack, blocks in _touched(members).items()
        if len(blocks) >= 2 and stack in stacks and blocks >= stacks[stack]
    )
    return total > 0 and 2 * spanned > total


def group_label(members: Sequence[_Member], stacks: dict[str, set[int]]) -> tuple[str, bool]:
    """A readable label of a group, and whether it spans a whole residual stream.

    ``"residual stream (embed.weight dim 1, 12 members, all 4 blocks of 'layers')"`` for a
    group that runs through the blocks of a stack, ``"fc1.weight dim 0 (2 members)"`` else.
    """
    first = members[0]
    where = f"{first.name} dim {first.dim}"
    touched = _touched(members)
    runs = [(len(b), stack) for stack, b in touched.items() if len(b) >= 2]
    if not runs:
        return f"{where} ({len(members)} members)", False
    count, stack = max(runs)
    total = len(stacks.get(stack, ()))
    whole = count >= total
    span = f"all {total}" if whole else f"{count} of {total}"
    return f"residual stream ({where}, {len(members)} members, {span} blocks of '{stack}')", whole
