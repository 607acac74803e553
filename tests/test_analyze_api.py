"""prunekit.analyze(): groups, members, exactness, frozen/unsupported ops, printing."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from zoo import ZOO

import prunekit
from prunekit import ConfigError, TraceError, UnsupportedOpWarning


def members(group: prunekit.Group, *, params_only: bool = False) -> list[tuple[str, int]]:
    return [(m.name, m.dim) for m in group.members if m.is_param or not params_only]


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


# --------------------------------------------------------------------------- MLP


def test_mlp_single_group() -> None:
    graph = prunekit.analyze(mlp(), torch.randn(3, 4))
    assert len(graph) == 1
    g = graph.groups[0]
    assert g.id == 0
    assert g.num_units == 8
    assert g.exact and g.reasons == []
    assert members(g) == [("0.weight", 0), ("0.bias", 0), ("2.weight", 1)]
    assert all(m.is_param for m in g.members)
    assert all(m.indices.tolist() == [[u] for u in range(8)] for m in g.members)
    assert g.key == "0.weight:0"
    assert g.modules() == ["0", "2"]
    assert graph.group(0) is g and graph.group("0.weight:0") is g


def test_mlp_inputs_and_outputs_are_frozen() -> None:
    graph = prunekit.analyze(mlp(), torch.randn(3, 4))
    kinds = {f.kind: f for f in graph.frozen}
    assert "io" in kinds
    assert "2.weight:0" in kinds["io"].members and "2.bias:0" in kinds["io"].members
    assert kinds["io"].num_units == 2
    assert kinds["io"].reason == "model output"


def test_unknown_group_lookup_raises_config_error() -> None:
    graph = prunekit.analyze(mlp(), torch.randn(3, 4))
    with pytest.raises(ConfigError, match="'nope'"):
        graph.group("nope")
    with pytest.raises(ConfigError):
        graph.group(5)


def test_print_graph_lists_groups_and_members(capsys: pytest.CaptureFixture[str]) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    graph = prunekit.analyze(model, torch.randn(3, 4))
    print(graph)
    out = capsys.readouterr().out
    assert "2 prunable groups (2 exact), 14 units" in out
    assert "Group 0 (8 units, exact)" in out
    assert "Group 1 (6 units, exact)" in out
    for name in (
        "0.weight dim=0",
        "0.bias dim=0",
        "2.weight dim=1",
        "2.weight dim=0",
        "4.weight dim=1",
    ):
        assert name in out, name
    # group 0's members are listed under group 0, before group 1 starts
    g0, g1 = out.index("Group 0"), out.index("Group 1")
    assert g0 < out.index("0.bias dim=0") < g1 < out.index("4.weight dim=1")


def test_analyze_does_not_modify_the_model() -> None:
    model = mlp()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    prunekit.analyze(model, torch.randn(3, 4))
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])
    assert model[0].out_features == 8


def test_analyze_preserves_per_module_training_flags() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))
    model.train()
    model[1].eval()
    prunekit.analyze(model, torch.randn(2, 3, 8, 8))
    assert [m.training for m in model] == [True, False, True, True]


def test_wrong_inputs_raise_trace_error() -> None:
    with pytest.raises(TraceError, match="mat1 and mat2"):
        prunekit.analyze(mlp(), torch.randn(3, 5))


# --------------------------------------------------------------------------- conv + BN + residual


@pytest.fixture(scope="module")
def resnet_graph() -> prunekit.DependencyGraph:
    case = ZOO["resnet_basic"]()
    return prunekit.analyze(case.model, case.example_inputs)


def test_resnet_group_sizes(resnet_graph: prunekit.DependencyGraph) -> None:
    assert [g.num_units for g in resnet_graph.groups] == [16, 16, 16, 32, 32, 32]
    assert all(g.exact for g in resnet_graph.groups)


def test_resnet_stem_group_couples_the_residual_stream(
    resnet_graph: prunekit.DependencyGraph,
) -> None:
    g = resnet_graph.groups[0]
    assert members(g, params_only=True) == [
        ("conv1.weight", 0),
        ("bn1.weight", 0),
        ("bn1.bias", 0),
        ("layer1.0.conv1.weight", 1),
        ("layer1.0.conv2.weight", 0),
        ("layer1.0.bn2.weight", 0),
        ("layer1.0.bn2.bias", 0),
        ("layer1.1.conv1.weight", 1),
        ("layer1.1.conv2.weight", 0),
        ("layer1.1.bn2.weight", 0),
        ("layer1.1.bn2.bias", 0),
        ("layer2.0.conv1.weight", 1),
        ("layer2.0.downsample.0.weight", 1),
    ]
    buffers = {n for n, _ in members(g)} - {n for n, _ in members(g, params_only=True)}
    assert buffers == {
        f"{bn}.{stat}"
        for bn in ("bn1", "layer1.0.bn2", "layer1.1.bn2")
        for stat in ("running_mean", "running_var")
    }
    assert all(not m.is_param for m in g.members if m.name in buffers)


def test_resnet_inner_block_group(resnet_graph: prunekit.DependencyGraph) -> None:
    g = resnet_graph.groups[1]
    assert members(g, params_only=True) == [
        ("layer1.0.conv1.weight", 0),
        ("layer1.0.bn1.weight", 0),
        ("layer1.0.bn1.bias", 0),
        ("layer1.0.conv2.weight", 1),
    ]


def test_resnet_downsample_group_reaches_fc(resnet_graph: prunekit.DependencyGraph) -> None:
    g = resnet_graph.groups[4]
    names = members(g, params_only=True)
    assert ("layer2.0.downsample.0.weight", 0) in names
    assert ("layer2.0.downsample.1.weight", 0) in names
    assert ("layer2.0.conv2.weight", 0) in names
    assert ("layer2.1.conv2.weight", 0) in names
    assert ("fc.weight", 1) in names
    assert len(names) == 11
    # the model output (fc out-features) is frozen, not a group
    assert not any(("fc.weight", 0) in members(x) for x in resnet_graph.groups)


# --------------------------------------------------------------------------- transformer


@pytest.fixture(scope="module")
def transformer_graph() -> prunekit.DependencyGraph:
    case = ZOO["transformer_handwritten"]()
    return prunekit.analyze(case.model, case.example_inputs)


def test_transformer_groups(transformer_graph: prunekit.DependencyGraph) -> None:
    groups = transformer_graph.groups
    assert [g.num_units for g in groups] == [32, 4, 64, 4, 64]
    assert [g.exact for g in groups] == [False, True, True, True, True]


def test_transformer_residual_stream_is_non_exact_because_of_layer_norm(
    transformer_graph: prunekit.DependencyGraph,
) -> None:
    g = transformer_graph.groups[0]
    assert not g.exact
    assert any("layer_norm" in r for r in g.reasons)
    names = members(g)
    assert len(names) == 29
    for expected in [
        ("pos_embed", 2),
        ("embed.weight", 1),
        ("blocks.0.ln1.weight", 0),
        ("blocks.0.attn.q.weight", 1),
        ("blocks.0.attn.o.weight", 0),
        ("blocks.1.mlp.fc2.bias", 0),
        ("ln_f.bias", 0),
        ("head.weight", 1),
    ]:
        assert expected in names, expected


def test_transformer_attention_heads_group(transformer_graph: prunekit.DependencyGraph) -> None:
    g = transformer_graph.groups[1]
    assert g.num_units == 4
    expected = [
        (f"blocks.0.attn.{lin}.{t}", 0) for lin in ("q", "k", "v") for t in ("weight", "bias")
    ] + [("blocks.0.attn.o.weight", 1)]
    assert members(g) == expected
    for m in g.members:  # head h owns features 8h .. 8h+7
        assert m.indices.tolist() == [list(range(8 * h, 8 * h + 8)) for h in range(4)]


def test_transformer_mlp_group(transformer_graph: prunekit.DependencyGraph) -> None:
    g = transformer_graph.groups[2]
    assert members(g) == [
        ("blocks.0.mlp.fc1.weight", 0),
        ("blocks.0.mlp.fc1.bias", 0),
        ("blocks.0.mlp.fc2.weight", 1),
    ]


# --------------------------------------------------------------------------- unsupported ops


class ChannelOpNet(nn.Module):
    """a -> relu -> ``op`` over the hidden (unit) dim -> b -> relu -> c."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 6)
        self.c = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        if self.op == "gather":
            h = torch.gather(h, 1, torch.arange(7, -1, -1).expand(h.shape[0], 8))
        elif self.op == "logcumsumexp":
            h = torch.logcumsumexp(h, dim=1)
        elif self.op == "cumsum":
            h = torch.cumsum(h, dim=1)
        return self.c(torch.relu(self.b(h)))


@pytest.mark.parametrize("op", ["gather", "logcumsumexp"])
def test_unsupported_op_warns_and_freezes(op: str) -> None:
    torch.manual_seed(0)
    with pytest.warns(UnsupportedOpWarning, match=rf"aten\.{op}\b") as record:
        graph = prunekit.analyze(ChannelOpNet(op), torch.randn(2, 4))
    msg = str(next(w.message for w in record if issubclass(w.category, UnsupportedOpWarning)))
    assert "register_op_rule" in msg
    # the a -> (op) group is frozen; the b -> c group remains
    assert len(graph.groups) == 1
    assert members(graph.groups[0]) == [("b.weight", 0), ("b.bias", 0), ("c.weight", 1)]
    assert graph.groups[0].num_units == 6
    assert not any(m.name.startswith("a.") for g in graph.groups for m in g.members)
    unsupported = [f for f in graph.frozen if f.kind == "unsupported"]
    assert len(unsupported) == 1
    assert unsupported[0].members == ["a.bias:0", "a.weight:0"]
    assert unsupported[0].num_units == 8
    assert op in unsupported[0].reason
    text = str(graph)
    assert "Frozen by unsupported ops" in text and op in text


def test_unsupported_op_groups_are_not_pruned() -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsupportedOpWarning)
        res = prunekit.prune(ChannelOpNet("gather"), torch.randn(2, 4), ratio=0.5)
    assert res.model.a.out_features == 8
    assert res.model.b.out_features == 3
    assert res.model(torch.randn(5, 4)).shape == (5, 2)


def test_cumsum_over_the_unit_dim_freezes_its_producer() -> None:
    # prefix sums mix units: the a-group can never be cut, whether mapped or unsupported
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsupportedOpWarning)
        graph = prunekit.analyze(ChannelOpNet("cumsum"), torch.randn(2, 4))
    assert [members(g) for g in graph.groups] == [[("b.weight", 0), ("b.bias", 0), ("c.weight", 1)]]
    assert any("a.weight:0" in f.members for f in graph.frozen)


def test_supported_model_emits_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedOpWarning)
        graph = prunekit.analyze(mlp(), torch.randn(3, 4))
    assert graph.frozen and not any(f.kind == "unsupported" for f in graph.frozen)


# --------------------------------------------------------------------------- exactness


class NormNet(nn.Module):
    def __init__(self, norm: str) -> None:
        super().__init__()
        self.norm = norm
        self.a = nn.Linear(4, 8)
        self.ln = nn.LayerNorm(8)
        self.b = nn.Linear(8, 6)
        self.c = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        h = self.ln(h) if self.norm == "layer_norm" else torch.softmax(h, dim=-1)
        return self.c(torch.relu(self.b(h)))


def test_layer_norm_over_prunable_dim_is_non_exact() -> None:
    graph = prunekit.analyze(NormNet("layer_norm"), torch.randn(2, 4))
    assert len(graph.groups) == 2
    g, other = graph.groups
    assert members(g) == [
        ("a.weight", 0),
        ("a.bias", 0),
        ("ln.weight", 0),
        ("ln.bias", 0),
        ("b.weight", 1),
    ]
    assert not g.exact
    assert g.reasons and all("layer_norm" in r for r in g.reasons)
    assert "'ln'" in g.reasons[0]
    assert other.exact and other.num_units == 6
    assert "non-exact: " in str(g)


def test_softmax_over_prunable_dim_is_non_exact() -> None:
    graph = prunekit.analyze(NormNet("softmax"), torch.randn(2, 4))
    g, other = graph.groups
    assert members(g) == [("a.weight", 0), ("a.bias", 0), ("b.weight", 1)]
    assert not g.exact
    assert any("softmax" in r for r in g.reasons)
    assert other.exact
    assert "1 exact" in str(graph)


def test_softmax_over_another_dim_stays_exact() -> None:
    class SeqSoftmax(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 8)
            self.b = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.softmax(self.a(x), dim=1))  # over the sequence, not features

    graph = prunekit.analyze(SeqSoftmax(), torch.randn(2, 5, 4))
    assert len(graph.groups) == 1
    assert graph.groups[0].exact
    assert graph.groups[0].num_units == 8
