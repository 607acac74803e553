"""Weight-level pruning: exact sparsity, N:M patterns, masks through fine-tuning, removal."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunekit.errors import ConfigError, RegistryError
from prunekit.sparsity import (
    WeightCriterion,
    global_masks,
    make_permanent,
    masks_of,
    nm_mask,
    prune_weights,
    row_mask,
    sparsity_summary,
    unstructured_mask,
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = F.adaptive_avg_pool2d(x, 4).flatten(1)
        out: torch.Tensor = self.fc2(F.relu(self.fc1(x)))
        return out


def net_and_data() -> tuple[Net, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return Net(), torch.randn(16, 8, 6, 6), torch.randint(0, 10, (16,))


def zeros(model: nn.Module, name: str) -> int:
    return int((model.get_submodule(name).weight == 0).sum())


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_local_masks_have_the_exact_sparsity(sparsity: float) -> None:
    net, _, _ = net_and_data()
    masked = prune_weights(net, sparsity)
    for name in ("conv", "fc1", "fc2"):
        n = net.get_submodule(name).weight.numel()
        assert zeros(masked, name) == int(sparsity * n + 1e-9)
    assert not masks_of(net)  # the input model is untouched


def test_global_and_row_scopes_are_exact() -> None:
    net, _, _ = net_and_data()
    total = sum(net.get_submodule(n).weight.numel() for n in ("conv", "fc1", "fc2"))
    glob = prune_weights(net, 0.6, scope="global")
    assert sum(zeros(glob, n) for n in ("conv", "fc1", "fc2")) == int(0.6 * total)
    rows = prune_weights(net, 0.5, scope="row")
    per_row = (rows.fc1.weight == 0).sum(1)
    assert per_row.tolist() == [128] * 32  # 256 inputs per row
    per_filter = (rows.conv.weight == 0).flatten(1).sum(1)
    assert per_filter.tolist() == [36] * 16  # 72 weights per output channel
    # ties and hand cases of the mask functions
    assert unstructured_mask(torch.ones(10), 0.3).sum() == 7
    assert row_mask(torch.tensor([[1.0, 2.0], [4.0, 3.0]]), 0.5).tolist() == [
        [False, True],
        [True, False],
    ]
    g = global_masks({"a": torch.tensor([1.0, 5.0]), "b": torch.tensor([2.0, 0.5])}, 0.5)
    assert (g["a"].tolist(), g["b"].tolist()) == ([False, True], [True, False])


@pytest.mark.parametrize("pattern", ["2:4", "4:8", (1, 4)])
def test_nm_pattern_holds_in_every_group(pattern: str | tuple[int, int]) -> None:
    net, _, _ = net_and_data()
    n, m = (int(v) for v in pattern.split(":")) if isinstance(pattern, str) else pattern
    masked = prune_weights(net, pattern=pattern)
    linear = masked.fc1.weight.reshape(32, -1, m)  # groups along the input dim
    assert ((linear != 0).sum(-1) <= n).all() and (
        masks_of(masked)["fc1"].reshape(32, -1, m).sum(-1) == n
    ).all()
    conv_mask = masks_of(masked)["conv"].movedim(1, -1).reshape(16, 3, 3, -1, m)
    assert (conv_mask.sum(-1) == n).all()  # along in-channels at every kernel position
    assert sparsity_summary(masked).weight_sparsity == pytest.approx(1 - n / m)


def test_nm_mask_by_hand_and_skipped_layers_warn() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.2, 3.0, 1.0, 2.0, 4.0]])
    assert nm_mask(scores, 2, 4).int().tolist() == [[0, 1, 1, 0, 1, 0, 0, 1]]
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    with pytest.warns(UserWarning, match=r"skips layers.*0 \(6\)"):
        masked = prune_weights(net, pattern="2:4")
    assert list(masks_of(masked)) == ["2"]
    with pytest.raises(ConfigError, match="not a multiple of M=4"):
        nm_mask(torch.ones(2, 6), 2, 4)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny ops on several threads crawl when the cores are busy; one is enough."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_fine_tuning_keeps_pruned_weights_at_zero() -> None:
    net, x, y = net_and_data()
    x, y = x[:4], y[:4]
    masked = prune_weights(net, 0.7)
    masks = {k: v.clone() for k, v in masks_of(masked).items()}
    opts = [
        torch.optim.SGD(masked.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2),
        torch.optim.Adam(masked.parameters(), lr=1e-2),
    ]
    for opt in opts:
        for _ in range(3):
            loss = F.cross_entropy(masked(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for name, mask in masks.items():
        w = masked.get_submodule(name).weight
        assert (w[~mask] == 0).all() and (w[mask] != 0).all()
    state = masked.state_dict()  # checkpoints carry the masks
    assert "fc1.parametrizations.weight.0.mask" in state


def test_make_permanent_leaves_plain_modules_with_zeros() -> None:
    net, x, _ = net_and_data()
    masked = prune_weights(net, 0.5)
    before = masked(x).detach()
    other = copy.deepcopy(masked)  # deep copies share the parametrized class
    plain = make_permanent(masked)
    assert type(plain.fc1) is nn.Linear and type(plain.conv) is nn.Conv2d
    assert isinstance(plain.fc1.weight, nn.Parameter) and not masks_of(plain)
    assert set(plain.state_dict()) == set(net.state_dict())
    assert zeros(plain, "fc1") == 32 * 256 // 2
    assert torch.allclose(plain(x), before)
    assert other.fc1.weight.shape == (32, 256)  # the copy still works
    torch.jit.trace(plain.eval(), x)  # an ordinary module again


def test_repruning_tightens_masks() -> None:
    net, _, _ = net_and_data()
    half = prune_weights(net, 0.5)
    more = prune_weights(half, 0.8)
    old, new = masks_of(half)["fc1"], masks_of(more)["fc1"]
    assert not (new & ~old).any()  # nothing pruned before comes back
    assert zeros(more, "fc1") == int(0.8 * 32 * 256)


def test_wanda_and_taylor_by_hand() -> None:
    fc = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
    x = torch.tensor([[4.0, 1.0], [0.0, 1.0]])  # rms of inputs: sqrt(8), 1
    # |W| * rms: [[2.83, 2], [8.49, 0.5]] -> per layer 50%: prune 0.5 and 2.0
    wanda = prune_weights(fc, 0.5, importance="wanda", data=[x])
    assert (wanda.weight != 0).tolist() == [[True, False], [True, False]]
    assert (prune_weights(fc, 0.5).weight != 0).tolist() == [[False, True], [True, False]]
    # Taylor |w * dL/dw| with L = sum(out): dL/dW[i, j] = sum_b x[b, j] = [4, 2]
    # |w g| = [[4, 4], [12, 1]] -> prune the lowest two (ties: lower index first)
    taylor = prune_weights(
        fc, 0.5, importance="taylor", data=[(x, None)], loss_fn=lambda out, b: out.sum()
    )
    assert (taylor.weight != 0).tolist() == [[False, True], [True, False]]
    custom = WeightCriterion("neg", lambda n, m, w, s: -w.abs())
    assert (prune_weights(fc, 0.5, importance=custom).weight != 0).tolist() == [
        [True, False],
        [False, True],
    ]
    given = {"": torch.tensor([[0.0, 1.0], [1.0, 0.0]])}
    assert (prune_weights(fc, 0.5, importance=given).weight != 0).tolist() == [
        [False, True],
        [True, False],
    ]


def test_errors_name_the_bad_value() -> None:
    net, x, _ = net_and_data()
    with pytest.raises(ConfigError, match="exactly one of sparsity"):
        prune_weights(net, 0.5, pattern="2:4")
    with pytest.raises(ConfigError, match="exactly one of sparsity"):
        prune_weights(net)
    with pytest.raises(ConfigError, match=r"sparsity=1\.0"):
        prune_weights(net, 1.0)
    with pytest.raises(ConfigError, match="pattern='4:2'"):
        prune_weights(net, pattern="4:2")
    with pytest.raises(ConfigError, match="scope='layer'"):
        prune_weights(net, 0.5, scope="layer")
    with pytest.raises(RegistryError, match="unknown weight criterion 'fisher'"):
        prune_weights(net, 0.5, importance="fisher")
    with pytest.raises(ConfigError, match="needs calibration batches"):
        prune_weights(net, 0.5, importance="wanda")
    with pytest.raises(ConfigError, match="needs gradients"):
        prune_weights(net, 0.5, importance="taylor", data=[x])
    with pytest.raises(ConfigError, match="scores for layer 'conv'"):
        prune_weights(net, 0.5, importance={"fc1": torch.ones(32, 256)})
    with pytest.raises(ConfigError, match=r"layers=\['head'\] matches no module"):
        prune_weights(net, 0.5, layers=["head"])
    assert list(masks_of(prune_weights(net, 0.5, ignore=net.conv))) == ["fc1", "fc2"]
    assert list(masks_of(prune_weights(net, 0.5, ignore=["conv"], layers=["fc*"]))) == [
        "fc1",
        "fc2",
    ]


def test_summary_counts_every_layer_and_parameter() -> None:
    net, _, _ = net_and_data()
    masked = prune_weights(net, 0.5, ignore=["fc2"])
    s = sparsity_summary(masked)
    by_name = {la.name: la for la in s.layers}
    assert by_name["fc1"].zeros == 4096 and by_name["fc1"].masked
    assert by_name["fc2"].sparsity == 0.0 and not by_name["fc2"].masked
    assert s.params == sum(p.numel() for p in net.parameters())
    assert s.param_zeros == 4096 + int(0.5 * 16 * 8 * 9) + 16  # + the BN bias, zero at init
    d = s.to_dict()
    assert d["layers"][0]["name"] == "conv" and 0 < d["param_sparsity"] < 0.5
    assert "fc1" in str(s)
