"""Protecting the input model costs memory only for the parameters a forward writes.

The working copy shares every parameter with the input model; :func:`own_written` copies a
parameter just before the first write into it. ``analyze`` on a model with large
parameters must therefore stay well below one extra copy of them (the previous design
cloned every parameter before the trace and compared them all afterwards: 1x at peak).
Allocations are counted at the ATen level: every storage an op creates, alive until the
storage is freed.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import prunekit
from tests.untouched import Snapshot


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


class _LiveBytes(TorchDispatchMode):
    """Peak bytes of the storages created by ATen ops while the mode is on."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # views and in-place results live on an input's storage: nothing new
        inputs = {id(t.untyped_storage()) for t in _tensors([args, kwargs]) if not t.is_meta}
        for t in _tensors(out):
            if not t.is_meta and id(t.untyped_storage()) not in inputs:
                self._count(t.untyped_storage())
        return out

    def _count(self, storage: torch.UntypedStorage) -> None:
        key = id(storage)
        if key in self._seen:
            return
        self._seen.add(key)
        n = storage.nbytes()
        self.live += n
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._free, key, n)

    def _free(self, key: int, n: int) -> None:
        self._seen.discard(key)
        self.live -= n


class Big(nn.Module):
    """16 MiB of parameters in 1 MiB weights, tiny activations; optionally a max-norm
    clamp in forward. (Per-parameter checks allocate a temporary the size of one
    parameter: many parameters keep that small next to the total.)"""

    def __init__(self, *, clamp: bool = False) -> None:
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(512, 512) for _ in range(16))
        self.head = nn.Linear(512, 4)
        self.clamp = clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.clamp:
            with torch.no_grad():
                self.fcs[1].weight.clamp_(-0.02, 0.02)
        for fc in self.fcs:
            x = torch.relu(fc(x))
        return self.head(x)


def _param_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _peak(fn: Any, *args: Any, **kwargs: Any) -> int:
    counter = _LiveBytes()
    with counter:
        fn(*args, **kwargs)
    return counter.peak


def test_counter_sees_parameter_clones() -> None:
    """The counter is not blind: cloning every parameter counts as 1x."""
    model = Big()
    peak = _peak(lambda: [p.detach().clone() for p in model.parameters()])
    assert peak >= _param_bytes(model)


def test_regression_analyze_does_not_clone_every_parameter() -> None:
    torch.manual_seed(0)
    model, x = Big().eval(), torch.randn(1, 512)
    snap = Snapshot.take(model)  # outside the counter: a snapshot clones everything
    peak = _peak(prunekit.analyze, model, x, probe=False)
    snap.assert_unchanged(model)
    assert peak < 0.25 * _param_bytes(model), f"{peak / _param_bytes(model):.2f}x the params"


def test_regression_parameter_written_in_forward_is_copied_alone() -> None:
    """A forward clamping one weight in place: that weight (and only it) is copied, and
    the input model's weight keeps its values, identity and version counter."""
    torch.manual_seed(0)
    model, x = Big(clamp=True).eval(), torch.randn(1, 512)
    written = model.fcs[1].weight
    n_written = written.numel() * written.element_size()
    snap = Snapshot.take(model)
    counter = _LiveBytes()
    with counter:
        graph = prunekit.analyze(model, x, probe=False)
        kept = counter.live  # the graph holds the working copy: its own tensors are alive
    snap.assert_unchanged(model)
    assert n_written <= kept < n_written + 0.1 * _param_bytes(model)
    assert counter.peak < n_written + 0.25 * _param_bytes(model)
    assert written.abs().max() > 0.02  # the input model was not clamped
    clamped = graph.tensors["fcs.1.weight"]
    assert clamped.abs().max() <= 0.02 and clamped.data_ptr() != written.data_ptr()
    # parameters the forward only read are still shared with the input model
    assert graph.tensors["fcs.0.weight"].data_ptr() == model.fcs[0].weight.data_ptr()
