"""Physical surgery: slice parameters and buffers, then make module attributes coherent."""

from __future__ import annotations

import copy
import types
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from torch import nn

from ..graph.context import SplitSite
from ..graph.dependency import DependencyGraph
from .configs import sync_configs
from .copy_on_write import own_written
from .registry import Handler, get_handler
from .split_sizes import update_split_pieces

__all__ = ["cut", "light_copy", "own_storage", "own_written", "tensor_owners", "zero_slices"]


def tensor_owners(model: nn.Module) -> dict[str, list[tuple[nn.Module, str, bool]]]:
    """Tensor name (as in ``named_parameters``/``named_buffers``) -> every (module, attr)
    that holds that same tensor object (tied weights have several owners)."""
    by_id: dict[int, list[tuple[nn.Module, str, bool]]] = defaultdict(list)
    for _, mod in model.named_modules(remove_duplicate=False):
        for attr, p in mod._parameters.items():
            if p is not None and (mod, attr, True) not in by_id[id(p)]:
                by_id[id(p)].append((mod, attr, True))
        for attr, b in mod._buffers.items():
            if b is not None and (mod, attr, False) not in by_id[id(b)]:
                by_id[id(b)].append((mod, attr, False))
    out: dict[str, list[tuple[nn.Module, str, bool]]] = {}
    for name, p in model.named_parameters():
        out[name] = by_id[id(p)]
    for name, b in model.named_buffers():
        out[name] = by_id[id(b)]
    return out


def light_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters share storage with the original.

    Modules get their own ``__dict__`` and parameter/buffer/submodule tables; buffers and
    tensor attributes are cloned (a forward that counts calls, keeps an EMA or a cache
    writes them in place), other mutable attributes are copied (configs deeply, with sharing
    kept), and scripted submodules are deep-copied. :func:`cut` and :func:`zero_slices`
    never write into an existing tensor, so they leave the original intact. For throw-away
    trials only: training the copy would write into the original's parameters (see
    :func:`own_storage`, and :func:`own_written` (copy-on-write) for forwards that write
    parameters).
    """
    memo: dict[int, Any] = {}
    return _light_module(model, memo)


def _light_module(module: nn.Module, memo: dict[int, Any]) -> nn.Module:
    if id(module) in memo:
        return memo[id(module)]  # type: ignore[no-any-return]
    if isinstance(module, torch.jit.ScriptModule):
        # compiled modules have no Python __dict__ to rebuild; they are small leaves
        memo[id(module)] = copy.deepcopy(module)
        return memo[id(module)]  # type: ignore[no-any-return]
    new = module.__class__.__new__(module.__class__)
    memo[id(module)] = new
    state = dict(module.__dict__)
    state["_parameters"] = {k: _light_tensor(p, memo) for k, p in module._parameters.items()}
    state["_buffers"] = {k: _light_tensor(b, memo, own=True) for k, b in module._buffers.items()}
    state["_modules"] = {
        k: None if c is None else _light_module(c, memo) for k, c in module._modules.items()
    }
    for key, value in module.__dict__.items():
        if key in ("_parameters", "_buffers", "_modules"):
            continue
        if key.endswith("hooks"):
            # hooks added to the copy stay on the copy (dict.copy: copy.copy is 5x slower)
            state[key] = value.copy() if isinstance(value, dict) else copy.copy(value)
        elif isinstance(value, types.MethodType) and isinstance(value.__self__, nn.Module):
            state[key] = types.MethodType(value.__func__, _light_module(value.__self__, memo))
        elif isinstance(value, nn.Module):
            state[key] = _light_module(value, memo)
        elif isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
            state[key] = _light_tensor(value, memo, own=True)
        elif (
            (isinstance(value, (list, dict, set)) or hasattr(value, "__dict__"))
            and not isinstance(value, (torch.Tensor, type))
            and not callable(value)
        ):
            state[key] = copy.deepcopy(value, memo)
    new.__dict__ = state
    return new


def own_storage(model: nn.Module, original: nn.Module) -> int:
    """Clone every parameter/buffer of ``model`` that still shares storage with ``original``
    (what a :func:`light_copy` left shared); return how many were cloned.

    After this, training ``model`` can never write into ``original``. Tied tensors stay tied.
    """

    def ptr(t: torch.Tensor) -> int:
        return 0 if t.is_meta else t.untyped_storage().data_ptr()

    theirs = {ptr(t) for t in (*original.parameters(), *original.buffers())} - {0}
    cloned = 0
    with torch.no_grad():
        for holders in tensor_owners(model).values():
            mod, attr, is_param = holders[0]
            old = getattr(mod, attr)
            if ptr(old) not in theirs:
                continue
            new = old.detach().clone()
            value = nn.Parameter(new, requires_grad=old.requires_grad) if is_param else new
            for m, a, p in holders:
                (m._parameters if p else m._buffers)[a] = value
            cloned += 1
    return cloned


def _light_tensor(t: Any, memo: dict[int, Any], *, own: bool = False) -> Any:
    """The copy of a parameter (sharing storage) or, with ``own``, of a buffer (cloned)."""
    if t is None:
        return None
    if id(t) not in memo:
        if isinstance(t, nn.Parameter):
            # ``.data``, not ``.detach()``: the same storage but an own version counter, so
            # a write into the copy (after copy-on-write) never bumps the original's
            memo[id(t)] = nn.Parameter(t.data, requires_grad=t.requires_grad)
        elif own:
            value = t.detach().clone()
            memo[id(t)] = value.requires_grad_(True) if t.requires_grad and t.is_leaf else value
        else:
            memo[id(t)] = t.detach()
    return memo[id(t)]


def zero_slices(
    model: nn.Module, removals: dict[tuple[str, int], np.ndarray], *, inplace: bool = False
) -> int:
    """Zero the given slices of every parameter (not buffers); return how many elements.

    By default out of place: each touched parameter is replaced by a zeroed copy (in every
    module that holds it), so this is safe on a :func:`light_copy`. ``inplace=True`` writes
    into the tensors (for a model that owns them and is about to lose those slices anyway).
    """
    owners = tensor_owners(model)
    per_tensor: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    for (name, dim), pos in removals.items():
        holders = owners.get(name)
        if holders and holders[0][2] and len(pos):
            per_tensor[name][dim] = np.unique(pos)
    total = 0
    with torch.no_grad():
        for name, cuts in per_tensor.items():
            holders = owners[name]
            old = getattr(holders[0][0], holders[0][1])
            new = old.detach()
            extent = list(new.shape)
            for i, (dim, pos) in enumerate(cuts.items()):
                idx = torch.as_tensor(pos, dtype=torch.long, device=new.device)
                # out of place, the first fill is the copy (one pass instead of clone + fill)
                new = new.index_fill_(dim, idx, 0) if inplace or i else new.index_fill(dim, idx, 0)
                extent[dim] -= len(pos)
            total += new.numel() - int(np.prod(extent))
            if inplace:
                continue
            value = nn.Parameter(new, requires_grad=old.requires_grad)
            for mod, attr, _ in holders:
                mod._parameters[attr] = value
    return total


def _slice(t: torch.Tensor, cuts: dict[int, np.ndarray]) -> torch.Tensor:
    data = t.detach()
    for dim, pos in sorted(cuts.items()):
        keep = np.ones(data.shape[dim], dtype=bool)
        keep[pos] = False
        idx = torch.from_numpy(np.flatnonzero(keep)).to(data.device)
        data = data.index_select(dim, idx)
    return data  # index_select already copied: never aliases the original


def cut(
    model: nn.Module,
    removals: dict[tuple[str, int], np.ndarray],
    graph: DependencyGraph,
    removed_units: dict[int, set[int]],
) -> None:
    """Remove ``removals[(tensor name, dim)]`` positions from ``model`` in place.

    Afterwards every touched module's handler updates its attributes, and module
    attributes recorded at reshape sites (``num_heads``) follow the new head counts.
    """
    owners = tensor_owners(model)
    per_tensor: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    for (name, dim), pos in removals.items():
        if len(pos):
            per_tensor[name][dim] = pos
    touched: dict[int, nn.Module] = {}
    for name, cuts in per_tensor.items():
        holders = owners.get(name)
        if not holders:
            continue
        mod0, attr0, is_param = holders[0]
        old = getattr(mod0, attr0)
        new = _slice(old, cuts)
        value: torch.Tensor = (
            nn.Parameter(new, requires_grad=old.requires_grad) if is_param else new
        )
        for mod, attr, param in holders:
            (mod._parameters if param else mod._buffers)[attr] = value  # type: ignore[assignment]
            touched[id(mod)] = mod
    for mod in touched.values():
        get_handler(mod).update(mod)
    widths = _update_split_attributes(model, graph, removed_units)
    update_split_pieces(model, graph, removed_units)
    widths += [(g.num_units, g.num_units - len(removed_units.get(g.id, ()))) for g in graph.groups]
    sync_configs(model, widths)


_WORDS = {
    "split": ("head", "inner", "dim", "size"),
    "size": ("dim", "size", "channel", "feature", "width", "hidden", "embed", "plane"),
}


# names that hold sizes which are never a prunable width
_NOT_WIDTHS = ("image", "img", "patch", "vocab", "max", "seq", "position", "layer", "window")


def _is_size_name(name: str) -> bool:
    return "dim" in name or "size" in name or "width" in name


def _products(sizes: tuple[int, ...], axis: int, new: int) -> dict[int, int]:
    """old -> new for every product of contiguous axes that contains the pruned ``axis``
    and at least one other axis (``num_heads * head_dim`` = ``attn_dim``, ``3 * attn_dim``)."""
    out: dict[int, int] = {}
    for lo in range(axis + 1):
        for hi in range(axis + 1, len(sizes) + 1):
            if hi - lo < 2:
                continue
            old_p = int(np.prod(sizes[lo:hi]))
            out.setdefault(old_p, old_p // sizes[axis] * new)
    return out


def _new_value(site: SplitSite, gone: int, attr: str, val: int) -> int | None:
    """The new value of int attribute ``attr`` after ``gone`` rows of ``site`` were cut."""
    low = attr.lower()
    old = site.sizes[site.axis]
    words = _WORDS.get(site.kind, ())  # "parts" sites: split_sizes.update_split_pieces
    if any(w in low for w in _NOT_WIDTHS) or not any(w in low for w in words):
        return None
    if site.kind == "size":
        return old - gone if val == old else None
    if val == old:
        # a count axis (heads) renames count attributes, the last axis (head_dim) size ones
        is_last = site.axis == len(site.sizes) - 1
        return old - gone if _is_size_name(low) == is_last else None
    if _is_size_name(low):
        return _products(site.sizes, site.axis, old - gone).get(val)
    return None


def _gone(rows: list[tuple[int, int] | None], removed_units: dict[int, set[int]]) -> int:
    """How many of a split site's rows (unit ``(group, index)`` or ``None``) were cut."""
    hit = [r for r in rows if r is not None and r[0] in removed_units]
    return sum(1 for g, i in hit if i in removed_units[g])


def _update_split_attributes(
    model: nn.Module, graph: DependencyGraph, removed_units: dict[int, set[int]]
) -> list[tuple[int, int]]:
    """Keep int attributes like ``num_heads`` / ``attn_dim`` equal to the sizes reshapes now
    produce. Returns the (old, new) head counts of split sites, for config objects."""
    modules = dict(model.named_modules())
    done: set[tuple[str, str]] = set()
    widths: list[tuple[int, int]] = []
    for site, rows in graph.splits:
        module = modules.get(site.module_path)
        if module is None:
            continue
        gone = _gone(rows, removed_units)
        old = site.sizes[site.axis]
        if site.kind == "split":
            widths.append((old, old - gone))
        if not gone or type(get_handler(module)) is not Handler:
            continue  # a module with a handler (Linear, Conv ...) keeps its own attributes
        for attr, val in list(vars(module).items()):
            if (
                (site.module_path, attr) in done
                or isinstance(val, bool)
                or not isinstance(val, int)
            ):
                continue
            new = _new_value(site, gone, attr, val)
            if new is not None:
                setattr(module, attr, new)
                done.add((site.module_path, attr))
    return widths
