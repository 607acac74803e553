"""A snapshot of everything about a model that prunekit promises never to change.

``snap = Snapshot.take(model)`` ... ``snap.assert_unchanged(model)`` compares state_dict
values (and every parameter/buffer object and its version counter), the module structure,
train/eval flags, ``requires_grad``, ``.grad``, every hook table, and each module's own
attributes (names, plain values, tensor values), so an in-place write, a swapped tensor, a
leftover hook or a stray attribute all fail with a message naming what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Snapshot", "assert_untouched"]

_PLAIN = (int, float, str, bool, type(None), tuple, torch.dtype, torch.device, torch.Size)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    if a.is_meta:
        return True
    if a.is_floating_point() or a.is_complex():
        return bool(torch.equal(a.isnan(), b.isnan())) and bool(
            torch.equal(a.nan_to_num(), b.nan_to_num())
        )
    return bool(torch.equal(a, b))


def _attrs(module: nn.Module) -> dict[str, Any]:
    """A module's own attributes: plain values as they are, tensors cloned, others by id."""
    out: dict[str, Any] = {}
    for key, value in vars(module).items():
        if key in ("_parameters", "_buffers", "_modules") or key.endswith("hooks"):
            continue
        if isinstance(value, torch.Tensor):
            out[key] = ("tensor", id(value), value.detach().clone())
        elif isinstance(value, _PLAIN):
            out[key] = ("plain", value)
        else:
            out[key] = ("object", id(value))
    return out


def _hooks(module: nn.Module) -> dict[str, list[tuple[Any, int]]]:
    return {
        key: [(k, id(v)) for k, v in value.items()]
        for key, value in vars(module).items()
        if key.endswith("hooks") and isinstance(value, dict)
    }


@dataclass
class Snapshot:
    """What :meth:`assert_unchanged` compares (see the module docstring)."""

    structure: list[tuple[str, int, str]]
    flags: dict[str, bool]
    tensors: dict[str, tuple[int, int, bool, torch.Tensor]]
    grads: dict[str, torch.Tensor | None]
    hooks: dict[str, dict[str, list[tuple[Any, int]]]]
    attrs: dict[str, dict[str, Any]]
    cls: type

    @classmethod
    def take(cls, model: nn.Module) -> Snapshot:
        mods = list(model.named_modules(remove_duplicate=False))
        tensors = {
            f"param:{n}": (id(p), p._version, p.requires_grad, p.detach().clone())
            for n, p in model.named_parameters(remove_duplicate=False)
        }
        tensors.update(
            {
                f"buffer:{n}": (id(b), b._version, b.requires_grad, b.detach().clone())
                for n, b in model.named_buffers(remove_duplicate=False)
            }
        )
        grads = {
            n: None if p.grad is None else p.grad.detach().clone()
            for n, p in model.named_parameters(remove_duplicate=False)
        }
        return cls(
            structure=[(n, id(m), type(m).__qualname__) for n, m in mods],
            flags={n: m.training for n, m in mods},
            tensors=tensors,
            grads=grads,
            hooks={n: _hooks(m) for n, m in mods},
            attrs={n: _attrs(m) for n, m in mods},
            cls=type(model),
        )

    def diff(self, model: nn.Module) -> list[str]:
        """Every difference between ``model`` now and this snapshot, in words."""
        now = Snapshot.take(model)
        out: list[str] = []
        if now.cls is not self.cls:
            out.append(f"class {self.cls.__name__} -> {now.cls.__name__}")
        if now.structure != self.structure:
            out.append(f"module structure changed: {self.structure} -> {now.structure}")
        out += [f"{n}.training changed" for n, f in self.flags.items() if now.flags.get(n) != f]
        for name, (ident, version, req, value) in self.tensors.items():
            if name not in now.tensors:
                out.append(f"{name} disappeared")
                continue
            ident2, version2, req2, value2 = now.tensors[name]
            if ident2 != ident:
                out.append(f"{name} is another tensor object")
            if version2 != version:
                out.append(f"{name} was written in place (version {version} -> {version2})")
            if req2 != req:
                out.append(f"{name}.requires_grad {req} -> {req2}")
            if not _same(value, value2):
                out.append(f"{name} changed value or shape")
        out += [f"{n} appeared" for n in now.tensors if n not in self.tensors]
        for n, g in self.grads.items():
            g2 = now.grads.get(n)
            if (g is None) != (g2 is None) or (
                g is not None and g2 is not None and not _same(g, g2)
            ):
                out.append(f"param:{n}.grad changed")
        out += [f"{n}: hooks changed" for n, h in self.hooks.items() if now.hooks.get(n) != h]
        for n, attrs in self.attrs.items():
            out += _attr_diff(n, attrs, now.attrs.get(n, {}))
        return out

    def assert_unchanged(self, model: nn.Module) -> None:
        """Raise AssertionError listing what changed in ``model`` since the snapshot."""
        changes = self.diff(model)
        assert not changes, "the input model was modified:\n  " + "\n  ".join(changes)


def _attr_diff(mod: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = [f"{mod}.{k} appeared" for k in after if k not in before]
    for key, old in before.items():
        new = after.get(key)
        if new is None:
            out.append(f"{mod}.{key} disappeared")
        elif old[0] != new[0]:
            out.append(f"{mod}.{key} changed kind")
        elif old[0] == "tensor":
            if old[1] != new[1] or not _same(old[2], new[2]):
                out.append(f"{mod}.{key} (a tensor attribute) changed")
        elif old[1:] != new[1:]:
            out.append(f"{mod}.{key} changed: {old[1:]} -> {new[1:]}")
    return out


def assert_untouched(model: nn.Module, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` and assert that ``model`` is unchanged afterwards (also
    when ``fn`` raises: the exception is re-raised after the check)."""
    snap = Snapshot.take(model)
    try:
        return fn(*args, **kwargs)
    finally:
        snap.assert_unchanged(model)
