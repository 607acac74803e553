"""Copy-on-write for the parameters a working copy shares with the user's model.

A :func:`~prunekit.surgery.apply.light_copy` shares every parameter's storage with the
model it was copied from. A forward that writes a parameter (a max-norm clamp under
``no_grad``, ``self.weight.data.copy_(...)``, weights updated in ``forward``) would write
into the user's model. :func:`own_written` runs a block under a dispatch mode that sees
every ATen op: before an op writes into (the ``Tensor(a!)`` arguments of its schema) a
storage a parameter of the working copy shares, that storage is cloned and the working
copy's parameters on it are moved onto the clone. From then on every op that touches the
old storage (through the parameter, a ``.data`` alias, or a view) is redirected to the
clone, so the block sees its own writes and the user's tensors never change. Only the
parameters actually written cost memory; nothing is compared afterwards.

Writes that bypass the dispatcher (through ``.numpy()`` or a raw pointer) are not seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["own_written", "written_arguments"]

_WRITES: dict[Any, tuple[tuple[int, str], ...]] = {}  # op overload -> its written arguments


def written_arguments(func: Any) -> tuple[tuple[int, str], ...]:
    """(position, name) of the arguments ``func``'s schema marks as written (``Tensor(a!)``,
    ``out=``, in-place ``self``); cached per op overload."""
    found = _WRITES.get(func)
    if found is None:
        schema = getattr(func, "_schema", None)
        found = tuple(
            (i, a.name)
            for i, a in enumerate(schema.arguments if schema is not None else ())
            if a.alias_info is not None and a.alias_info.is_write
        )
        _WRITES[func] = found
    return found


def _ptr(t: torch.Tensor) -> int:
    """The data pointer of ``t``'s storage (0 for meta and storage-less tensors)."""
    try:
        return 0 if t.is_meta else int(t.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):  # sparse, nested, tensor subclasses
        return 0


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def _on(storage: torch.UntypedStorage, like: torch.Tensor) -> torch.Tensor:
    """A tensor on ``storage`` with ``like``'s dtype, offset, size and strides."""
    empty = torch.empty(0, dtype=like.dtype, device=like.device)
    return empty.set_(storage, like.storage_offset(), like.size(), like.stride())


class _CopyOnWrite(TorchDispatchMode):
    """Clones a shared storage just before its first write; redirects every later use."""

    def __init__(self, shared: dict[int, list[tuple[str, nn.Parameter]]]) -> None:
        super().__init__()
        self.shared = shared  # storage pointer -> working parameters on it, not yet copied
        self.moved: dict[int, torch.UntypedStorage] = {}  # old pointer -> its clone
        self.written: dict[str, nn.Parameter] = {}

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        for i, name in written_arguments(func):
            value = args[i] if i < len(args) else kwargs.get(name)
            for t in _tensors(value):
                ptr = _ptr(t)
                if ptr in self.shared:
                    self._copy(ptr)
        if self.moved:
            args = tuple(self._redirect(a) for a in args)
            kwargs = {k: self._redirect(v) for k, v in kwargs.items()}
        return func(*args, **kwargs)

    def _copy(self, ptr: int) -> None:
        """Move the working parameters on storage ``ptr`` onto a clone of it (in place: the
        parameter objects, and so the tracer's view of them, stay the same)."""
        params = self.shared.pop(ptr)
        first = params[0][1]
        # a tensor-level clone: an ATen op, so allocation counters and outer modes see it
        flat = torch.empty(0, dtype=torch.uint8, device=first.device)
        clone = flat.set_(first.untyped_storage()).clone().untyped_storage()
        for name, p in params:
            p.data = _on(clone, p)
            self.written[name] = p
        self.moved[ptr] = clone

    def _redirect(self, value: Any) -> Any:
        """``value`` with every tensor on a copied storage replaced by the same view of the
        clone (an alias such as ``p.data`` still points at the user's storage)."""
        if isinstance(value, torch.Tensor):
            clone = self.moved.get(_ptr(value))
            return value if clone is None else _on(clone, value)
        if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
            return type(value)(self._redirect(v) for v in value)
        return value


@contextmanager
def own_written(model: nn.Module) -> Iterator[dict[str, nn.Parameter]]:
    """Run the block so that any parameter of ``model`` it writes (in place, through
    ``.data``, ``out=``) is first copied: ``model`` keeps the copies, the tensors it
    shared them with never change. Parameters the block only reads stay shared and cost
    nothing.

    ``model`` is a :func:`~prunekit.surgery.apply.light_copy`: without this, a forward
    that writes a parameter (a max-norm clamp, weights updated in ``forward``) would write
    into the original model. Yields {name: parameter} of the parameters written, filled
    as the block runs.
    """
    shared: dict[int, list[tuple[str, nn.Parameter]]] = {}
    seen: set[int] = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        ptr = _ptr(p)
        if ptr and id(p) not in seen:
            seen.add(id(p))
            shared.setdefault(ptr, []).append((name, p))
    mode = _CopyOnWrite(shared)
    with mode:
        yield mode.written
