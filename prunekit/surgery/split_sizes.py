"""Keep the sizes a module passes to ``split([a, b, ...])`` equal to its pieces after a cut.

The trace records, for each piece of such a split, the module attributes its size is read
from (:class:`~prunekit.graph.context.SplitSite` of kind ``"parts"``): an int attribute
(``self.c``) or one element of a list/tuple attribute (``self.split_sizes[1]``). After a
cut, each of them loses as many positions as its piece lost.
"""

from __future__ import annotations

import re

from torch import nn

from ..graph.dependency import DependencyGraph
from ..graph.split_axis import set_attribute_keeper
from .registry import Handler, get_handler

__all__ = ["update_split_pieces"]

_ELEMENT = re.compile(r"^(?P<name>\w+)\[(?P<index>\d+)\]$")


def update_split_pieces(
    model: nn.Module, graph: DependencyGraph, removed_units: dict[int, set[int]]
) -> None:
    """Lower the size attributes of every cut piece of a ``split`` with explicit sizes.

    A split that runs several times (a shared module) is recorded once per call; each
    attribute is updated once.
    """
    modules = dict(model.named_modules())
    done: set[tuple[str, str]] = set()
    for site, rows in graph.splits:
        module = modules.get(site.module_path)
        if site.kind != "parts" or module is None:
            continue
        gone = sum(1 for r in rows if r is not None and r[1] in removed_units.get(r[0], ()))
        if not gone:
            continue
        for attr in site.attrs:
            if (site.module_path, attr) not in done:
                done.add((site.module_path, attr))
                _lower(module, attr, site.sizes[0], gone)


def _lower(module: nn.Module, attr: str, old: int, gone: int) -> None:
    """``module.<attr>`` (or one element of it) goes from ``old`` to ``old - gone``."""
    m = _ELEMENT.match(attr)
    if m is None:
        if getattr(module, attr, None) == old:
            setattr(module, attr, old - gone)
        return
    name, index = m["name"], int(m["index"])
    seq = getattr(module, name, None)
    if not isinstance(seq, (list, tuple)) or index >= len(seq) or seq[index] != old:
        return
    new = [*seq]
    new[index] = old - gone
    # a new object, never written in place: a trial copy may share the list with the model
    setattr(module, name, new if isinstance(seq, list) else type(seq)(new))


def _keeps_own_attributes(module: nn.Module) -> bool:
    """A module with a layer handler updates its own attributes; reshape sites in it never
    set them (see ``apply._update_split_attributes``)."""
    return type(get_handler(module)) is not Handler


# the graph couples reshapes that read one attribute only where that attribute follows
set_attribute_keeper(_keeps_own_attributes)
