"""Which groups may be cut: ``ignore`` (modules or names) and each group's producer modules."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError
from ..graph.dependency import Group
from ..surgery import get_handler

__all__ = ["ignored_names", "is_ignored", "producer_modules"]


def ignored_names(model: nn.Module, ignore: Any) -> set[str]:
    """Qualified names of the modules in ``ignore`` (modules of ``model`` or their names).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
        >>> sorted(ignored_names(net, [net[1], "0"]))
        ['0', '1']
    """
    names = {id(m): n for n, m in model.named_modules()}
    valid = set(names.values())
    out: set[str] = set()
    for item in ignore:
        if isinstance(item, nn.Module):
            if id(item) not in names:
                raise ConfigError(
                    f"ignore contains a {type(item).__name__} that is not a submodule of the "
                    "model; pass modules of this model or their qualified names"
                )
            out.add(names[id(item)])
        elif isinstance(item, str):
            if item not in valid:
                close = [n for n in valid if item.split(".")[-1] in n][:5]
                raise ConfigError(
                    f"ignore names module {item!r}, which is not in the model"
                    + (f"; did you mean one of {close}?" if close else "")
                )
            out.add(item)
        else:
            raise ConfigError(f"ignore items must be modules or names, got {type(item).__name__}")
    return out


def is_ignored(group: Group, ignored: set[str], modules: dict[str, nn.Module]) -> bool:
    """Whether ``group`` holds the own output units of an ignored module (or of its children).

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
        >>> g = prunekit.analyze(net, torch.randn(1, 2)).groups[0]
        >>> is_ignored(g, {"0"}, dict(net.named_modules())), is_ignored(g, {"2"}, dict(net.named_modules()))
        (True, False)
    """
    if "" in ignored:  # the root module itself: nothing may be cut
        return True
    for m in group.members:
        mod = m.module
        if mod in ignored or any(mod.startswith(i + ".") for i in ignored if i):
            own = get_handler(modules[mod]).output_dims(modules[mod])
            if own.get(m.tensor) == m.dim:
                return True
    return False


def producer_modules(group: Group, modules: dict[str, nn.Module]) -> list[str]:
    """Modules whose *own* output units are this group's units (as their handler says).

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3),
        ...                           torch.nn.Linear(3, 1))
        >>> g = prunekit.analyze(net, torch.randn(2, 2)).groups[0]
        >>> producer_modules(g, dict(net.named_modules()))
        ['0', '1']
    """
    own = [
        m.module
        for m in group.members
        if m.module in modules
        and get_handler(modules[m.module]).output_dims(modules[m.module]).get(m.tensor) == m.dim
    ]
    return sorted(set(own)) or group.modules()
