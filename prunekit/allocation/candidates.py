"""Which groups may be cut: ``ignore`` (modules or names) and each group's producer modules."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..graph.dependency import Group
from ..spec import CutSpec
from ..surgery import get_handler

__all__ = [
    "check_module_patterns",
    "close_names",
    "ignored_names",
    "is_ignored",
    "kept_streams",
    "producer_modules",
]


def close_names(name: str, valid: Iterable[str]) -> str:
    """``"; did you mean one of [...]?"`` with the names of ``valid`` closest to ``name``
    (difflib, also on the last dotted part), or ``""`` when none is close.

    Example:
        >>> close_names("layer9.conv", ["layer1.conv", "layer2.conv", "fc"])
        "; did you mean one of ['layer2.conv', 'layer1.conv']?"
    """
    names = sorted(set(valid) - {""})
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    tail = name.split(".")[-1].strip("*?")
    close += [n for n in names if tail and n.split(".")[-1] == tail and n not in close]
    return f"; did you mean one of {close[:5]}?" if close else ""


def check_module_patterns(model: nn.Module, module_ratios: Mapping[str, float]) -> None:
    """Every key of ``module_ratios`` must name a module of ``model``: an exact name, a glob
    (``"layer3.*"``) or a parent of modules; else a ConfigError listing close names.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
        >>> check_module_patterns(net, {"0": 0.5, "*": 0.1})
        >>> check_module_patterns(net, {"layer9*": 0.5})
        Traceback (most recent call last):
        ...
        prunekit.errors.ConfigError: module_ratios key 'layer9*' matches no module of the model; valid names: ['0', '1']
    """
    names = [n for n, _ in model.named_modules() if n]
    for pattern in module_ratios:
        if not isinstance(pattern, str):
            raise ConfigError(f"module_ratios keys must be module names or globs, got {pattern!r}")
        if not any(fnmatchcase(n, pattern) or n.startswith(pattern + ".") for n in names):
            hint = close_names(pattern, names) or f"; valid names: {names[:12]}"
            raise ConfigError(f"module_ratios key {pattern!r} matches no module of the model{hint}")


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
                raise ConfigError(
                    f"ignore names module {item!r}, which is not in the model"
                    + close_names(item, valid)
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


def kept_streams(groups: Iterable[Group], spec: CutSpec) -> set[str]:
    """Keys of the groups ``spec`` leaves out as model-wide residual streams: with
    ``streams="keep"``, every :attr:`Group.model_stream` group not named in ``group_ratios``.

    Example:
        >>> from prunekit.graph.dependency import Group, Member
        >>> g = Group(0, [Member("embed.weight", 1, [[0], [1]])], True, model_stream=True)
        >>> sorted(kept_streams([g], CutSpec(0.5))), kept_streams([g], CutSpec(0.5, streams="prune"))
        (['embed.weight:1'], set())
    """
    if spec.streams == "prune":
        return set()
    return {g.key for g in groups if g.model_stream and g.key not in spec.group_ratios}


def warn_kept_streams(names: list[str], *, stacklevel: int = 2) -> None:
    """Warn that the model-wide residual stream groups ``names`` were left out of a cut by
    ``streams="keep"``, with the two ways to cut them."""
    warnings.warn(
        f"left {len(names)} model-wide residual stream group(s) out of the cut: "
        f"{'; '.join(names[:3])}{' ...' if len(names) > 3 else ''}. Cutting one narrows "
        "every block at once (accuracy can collapse); pass streams='prune' to cut them "
        "too, or name one in group_ratios=",
        UserWarning,
        stacklevel=stacklevel + 1,
    )
