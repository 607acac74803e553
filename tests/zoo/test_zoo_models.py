"""Sanity tests of the architecture zoo itself (no prunekit import)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from . import ZOO, ZooCase, call_model

NAMES = list(ZOO)


def _tensors(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _tensors(v)]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _tensors(v)]
    raise TypeError(f"unexpected output type {type(out)!r}")


def _input_tensors(case: ZooCase) -> list[Tensor]:
    return _tensors(case.example_inputs)


def test_registry_complete() -> None:
    assert len(ZOO) == 21
    for name, factory in ZOO.items():
        assert callable(factory), name


@pytest.mark.parametrize("name", NAMES)
def test_case_shape(name: str) -> None:
    case = ZOO[name]()
    assert isinstance(case, ZooCase)
    assert isinstance(case.model, nn.Module)
    assert case.kind in {"mlp", "cnn", "seq", "transformer"}
    assert isinstance(case.example_inputs, (Tensor, tuple, dict))
    for t in _input_tensors(case):
        assert t.shape[0] == 2
        assert t.dtype in (torch.float32, torch.int64)
    for p in case.model.parameters():
        assert p.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_forward_eval(name: str) -> None:
    case = ZOO[name]()
    case.model.eval()
    with torch.no_grad():
        out = case.run()
    outs = _tensors(out)
    assert outs
    for t in outs:
        assert t.shape[0] == 2
        assert torch.isfinite(t).all()
    # eval-mode forward is a pure function of the inputs
    out2 = call_model(case.model, case.example_inputs)
    for a, b in zip(outs, _tensors(out2), strict=True):
        torch.testing.assert_close(a, b.detach())


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_train(name: str) -> None:
    case = ZOO[name]()
    case.model.train()
    outs = _tensors(case.run())
    for t in outs:
        assert torch.isfinite(t).all()
    loss = sum(t.float().pow(2).mean() for t in outs)
    assert isinstance(loss, Tensor)
    loss.backward()
    grads = [p.grad for p in case.model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    for g in grads:
        if g is not None:
            assert torch.isfinite(g).all()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str) -> None:
    torch.manual_seed(1234)
    a = ZOO[name]()
    torch.rand(17)  # disturb the global RNG between calls
    b = ZOO[name]()
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    for x, y in zip(_input_tensors(a), _input_tensors(b), strict=True):
        assert torch.equal(x, y)
    with torch.no_grad():
        for x, y in zip(_tensors(a.run()), _tensors(b.run()), strict=True):
            assert torch.equal(x, y)


@pytest.mark.parametrize("name", NAMES)
def test_batchnorm_not_identity(name: str) -> None:
    case = ZOO[name]()
    for mod in case.model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            assert mod.running_mean is not None and mod.running_var is not None
            assert not torch.allclose(mod.running_mean, torch.zeros_like(mod.running_mean))
            assert not torch.allclose(mod.running_var, torch.ones_like(mod.running_var))
            assert not torch.allclose(mod.weight, torch.ones_like(mod.weight))


def test_tied_embedding_shares_storage() -> None:
    model = ZOO["tied_embedding"]().model
    head, embed = model.get_submodule("head"), model.get_submodule("embed")
    assert isinstance(head, nn.Linear) and isinstance(embed, nn.Embedding)
    assert head.weight is embed.weight


def test_dict_and_tuple_inputs() -> None:
    assert isinstance(ZOO["mlp_dict_input"]().example_inputs, dict)
    case = ZOO["multitask_dict"]()
    assert isinstance(case.example_inputs, tuple) and len(case.example_inputs) == 2
    out = case.run()
    assert set(out) == {"cls", "reg"}
