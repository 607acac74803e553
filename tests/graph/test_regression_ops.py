"""Regression tests (issue #15): ops and modules the engine froze or mis-mapped.

PReLU's per-channel weight, ``F.glu``, ``nn.LSTM(proj_size=...)``, TorchScript submodules
and attention whose softmax scale is read from the head size.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import prunekit
from prunekit import UnsupportedOpWarning
from prunekit.testing import check_equivalence


def _no_unsupported(model: nn.Module, x: object, **kw: object) -> prunekit.DependencyGraph:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedOpWarning)
        return prunekit.analyze(model, x, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- PReLU


class ChannelSwish(nn.Module):
    """A hand-written activation with a per-channel learnable slope."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.rand(c, 1, 1) + 0.5)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.beta * x)


@pytest.mark.parametrize("act", ["prelu", "prelu_linear", "channel_swish"])
def test_regression_per_channel_activation_parameters_are_group_members(act: str) -> None:
    torch.manual_seed(0)
    if act == "prelu_linear":
        model = nn.Sequential(nn.Linear(4, 8), nn.PReLU(8), nn.Linear(8, 3))
        x = torch.randn(5, 4)
        param = "1.weight"
    else:
        layer = nn.PReLU(8) if act == "prelu" else ChannelSwish(8)
        model = nn.Sequential(nn.Conv2d(3, 8, 3), layer, nn.Conv2d(8, 4, 3))
        with torch.no_grad():  # a PReLU slope that differs per channel
            next(layer.parameters()).uniform_(-0.5, 0.5)
        x = torch.randn(2, 3, 9, 9)
        param = "1.weight" if act == "prelu" else "1.beta"
    graph = _no_unsupported(model, x)
    assert len(graph.groups) == 1
    g = graph.groups[0]
    assert g.exact and g.num_units == 8
    assert (param, 0) in [(m.name, m.dim) for m in g.members]
    report = check_equivalence(model, x, ratio=0.5)
    assert report.groups_tested == 1 and report.max_abs_error < 1e-5
    res = prunekit.prune(model, x, ratio=0.5)
    assert dict(res.model.named_parameters())[param].shape[0] == 4
    if act != "channel_swish":
        assert res.model[1].num_parameters == 4
    assert res.model(x).shape == model(x).shape


def test_regression_prelu_single_parameter_stays_shared() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.PReLU(), nn.Conv2d(8, 4, 3))
    x = torch.randn(2, 3, 9, 9)
    graph = _no_unsupported(model, x)
    assert [g.num_units for g in graph.groups] == [8]
    check_equivalence(model, x, ratio=0.5)
    res = prunekit.prune(model, x, ratio=0.5)
    assert res.model[1].weight.shape == (1,)


# --------------------------------------------------------------------------- GLU


class GluMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 16)
        self.b = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(F.glu(self.a(x), dim=-1))


class GluConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv1d(3, 12, 3)
        self.b = nn.Conv1d(6, 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(F.glu(self.a(x), 1))


@pytest.mark.parametrize("case", ["linear", "conv"])
def test_regression_glu_pairs_unit_i_of_both_halves(case: str) -> None:
    torch.manual_seed(0)
    model: nn.Module = GluMLP() if case == "linear" else GluConv()
    x = torch.randn(5, 4) if case == "linear" else torch.randn(2, 3, 11)
    half = 8 if case == "linear" else 6
    graph = _no_unsupported(model, x)
    assert len(graph.groups) == 1
    g = graph.groups[0]
    assert g.exact and g.num_units == half
    rows = next(m for m in g.members if m.name == "a.weight" and m.dim == 0)
    assert rows.indices.tolist() == [[u, u + half] for u in range(half)]
    report = check_equivalence(model, x, ratio=0.5)
    assert report.groups_tested == 1 and report.max_abs_error < 1e-5
    res = prunekit.prune(model, x, ratio=0.5)
    assert res.model.a.weight.shape[0] == half and res.model.b.weight.shape[1] == half // 2
    assert res.model(x).shape == model(x).shape


# --------------------------------------------------------------------------- LSTM proj_size


class ProjLSTM(nn.Module):
    def __init__(self, layers: int, bidirectional: bool) -> None:
        super().__init__()
        self.rnn = nn.LSTM(
            4, 10, num_layers=layers, proj_size=6, batch_first=True, bidirectional=bidirectional
        )
        self.head = nn.Linear(6 * (2 if bidirectional else 1), 3)

    def forward(self, x: Tensor) -> Tensor:
        out, (h, c) = self.rnn(x)
        return self.head(out[:, -1])


@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, False), (2, True)])
def test_regression_lstm_proj_size_hidden_and_projection_groups(
    layers: int, bidirectional: bool
) -> None:
    torch.manual_seed(0)
    model = ProjLSTM(layers, bidirectional)
    x = torch.randn(3, 5, 4)
    graph = _no_unsupported(model, x)
    by_size = sorted((g.num_units, g.exact) for g in graph.groups)
    assert by_size == [(6, True), (10, True)]
    hidden = next(g for g in graph.groups if g.num_units == 10)
    proj = next(g for g in graph.groups if g.num_units == 6)
    assert ("rnn.weight_hr_l0", 1) in [(m.name, m.dim) for m in hidden.members]
    assert ("rnn.weight_hr_l0", 0) in [(m.name, m.dim) for m in proj.members]
    assert ("rnn.weight_hh_l0", 1) in [(m.name, m.dim) for m in proj.members]
    assert ("head.weight", 1) in [(m.name, m.dim) for m in proj.members]
    report = check_equivalence(model, x, ratio=0.5)
    assert report.groups_tested == 2 and report.max_abs_error < 1e-6
    res = prunekit.prune(model, x, ratio=0.5)
    rnn = res.model.rnn
    assert (rnn.hidden_size, rnn.proj_size) == (5, 3)
    assert rnn.weight_hr_l0.shape == (3, 5) and rnn.weight_hh_l0.shape == (20, 3)
    out = res.model(torch.randn(2, 7, 4))  # runs, at another batch size and length
    assert out.shape == (2, 3)
    out.sum().backward()


# --------------------------------------------------------------------------- TorchScript


class WithScripted(nn.Module):
    def __init__(self, use_scripted: bool = True) -> None:
        super().__init__()
        self.use_scripted = use_scripted
        self.a = nn.Linear(4, 8)
        self.sc = torch.jit.script(nn.Sequential(nn.Linear(8, 8), nn.ReLU()))
        self.b = nn.Linear(8, 6)
        self.c = nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.a(x))
        if self.use_scripted:
            h = self.sc(h)
        return self.c(torch.relu(self.b(h)))


def _analyze_scripted(use_scripted: bool, **kw: object) -> tuple[prunekit.DependencyGraph, list]:
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = prunekit.analyze(WithScripted(use_scripted), torch.randn(3, 4), **kw)  # type: ignore[arg-type]
    return graph, [str(w.message) for w in caught if issubclass(w.category, UnsupportedOpWarning)]


def test_regression_scripted_submodule_is_an_opaque_leaf() -> None:
    graph, msgs = _analyze_scripted(True, verify=False)
    assert [g.key for g in graph.groups] == ["b.weight:0"]  # the group after the leaf
    frozen = {m for f in graph.frozen for m in f.members}
    assert {"a.weight:0", "sc.0.weight:0", "sc.0.weight:1"} <= frozen
    assert len(msgs) == 1 and "'sc'" in msgs[0] and "TorchScript" in msgs[0]
    reasons = {f.reason for f in graph.frozen if "a.weight:0" in f.members}
    assert any("'sc'" in r for r in reasons)


def test_regression_unused_scripted_submodule_does_not_freeze_the_rest() -> None:
    graph, msgs = _analyze_scripted(False, verify=False)
    assert sorted(g.key for g in graph.groups) == ["a.weight:0", "b.weight:0"]
    assert msgs == []


@pytest.mark.parametrize("use_scripted", [True, False])
def test_regression_scripted_submodule_probe_and_prune(use_scripted: bool) -> None:
    """Needs the working copy (``light_copy``) to copy ScriptModules (issue #15)."""
    graph, _ = _analyze_scripted(use_scripted)  # with the probe, which copies the model
    want = ["b.weight:0"] if use_scripted else ["a.weight:0", "b.weight:0"]
    assert sorted(g.key for g in graph.groups) == want
    torch.manual_seed(0)
    model, x = WithScripted(use_scripted), torch.randn(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = prunekit.prune(model, x, ratio=0.5)
    assert res.model.b.weight.shape[0] == 3 and dict(res.model.named_parameters())[
        "sc.0.weight"
    ].shape == (8, 8)
    assert res.model(x).shape == (3, 2)


# --------------------------------------------------------------------------- attention scale


class Attention(nn.Module):
    """Hand-written attention whose softmax scale is computed from the head size."""

    def __init__(self, dim: int, num_heads: int, scale: str) -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.scale = num_heads, dim // num_heads, scale
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, N, _ = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape  # only feeds the reshape at the end: never a reason on its own
        q, k, v = self.heads(x)
        if self.scale == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            if self.scale == "sqrt":
                att = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            elif self.scale == "pow":
                att = (q * q.size(-1) ** -0.5) @ k.transpose(-2, -1)
            elif self.scale == "tensor":  # a 0-d tensor made from the size
                att = q @ k.transpose(-2, -1) / torch.tensor(float(k.size(-1))).sqrt()
            else:  # a constant: cut-proof
                att = q @ k.transpose(-2, -1) * 0.125
            y = att.softmax(-1) @ v
        y = y.transpose(1, 2).reshape(B, N, self.num_heads * self.head_dim)
        return self.proj(y).reshape(B, N, C)


class Block(nn.Module):
    """A residual stream 100x the attention branch: a one-unit probe cannot see the scale."""

    def __init__(self, scale: str) -> None:
        super().__init__()
        self.embed = nn.Linear(5, 32)
        self.attn = Attention(32, 4, scale)
        self.head = nn.Linear(32, 3)
        with torch.no_grad():
            self.attn.proj.weight.mul_(0.01)

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x)
        return self.head(100 * h + self.attn(h))


@pytest.mark.parametrize("scale", ["sqrt", "pow", "tensor", "sdpa"])
def test_regression_attention_scale_read_from_head_size_is_not_exact(scale: str) -> None:
    torch.manual_seed(0)
    model, x = Block(scale), torch.randn(2, 6, 5)
    graph = prunekit.analyze(model, x, attention="head_dims")
    dims = next(g for g in graph.groups if g.key == "attn.qkv.weight:0" and g.num_units == 8)
    assert not dims.exact
    if scale == "sdpa":
        assert any("scale" in r for r in dims.reasons)
    else:
        want = "reads the size of a prunable dim"
        assert any(want in r and "= 8" in r and "'attn'" in r for r in dims.reasons), dims.reasons
    # whole heads keep the head size, so the same model is exact under attention="heads"
    heads = prunekit.analyze(model, x, attention="heads")
    g = next(g for g in heads.groups if g.key == "attn.qkv.weight:0")
    assert g.num_units == 4 and g.exact, g.reasons


def test_regression_size_read_for_reshape_only_keeps_groups_exact() -> None:
    torch.manual_seed(0)
    model, x = Block("const"), torch.randn(2, 6, 5)
    graph = prunekit.analyze(model, x, attention="head_dims")
    assert len(graph.groups) == 2
    assert all(g.exact for g in graph.groups), [g.reasons for g in graph.groups]
