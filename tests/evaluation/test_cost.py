"""Params and MACs against hand-computed counts."""

from __future__ import annotations

import torch
from torch import nn

from prunekit.evaluation import CostReport, count_macs, count_params, measure_cost


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4, bias=False))


def test_mlp_params_by_hand() -> None:
    # 8*16 + 16 bias, then 16*4 without bias
    assert count_params(_mlp()) == 8 * 16 + 16 + 16 * 4


def test_mlp_macs_by_hand_scale_with_batch() -> None:
    model = _mlp()
    per_sample = 8 * 16 + 16 * 4
    assert count_macs(model, torch.randn(1, 8)) == per_sample
    assert count_macs(model, torch.randn(5, 8)) == 5 * per_sample


def test_conv2d_with_bias() -> None:
    conv = nn.Conv2d(3, 6, kernel_size=3, padding=1, bias=True)
    assert count_params(conv) == 6 * 3 * 3 * 3 + 6
    # every one of the 6*7*7 outputs takes 3 in-channels x 9 taps; bias adds are not MACs
    assert count_macs(conv, torch.randn(1, 3, 7, 7)) == 6 * 7 * 7 * 3 * 9
    no_bias = nn.Conv2d(3, 6, kernel_size=3, padding=1, bias=False)
    assert count_macs(no_bias, torch.randn(1, 3, 7, 7)) == count_macs(conv, torch.randn(1, 3, 7, 7))


def test_conv2d_stride_no_padding() -> None:
    conv = nn.Conv2d(2, 4, kernel_size=3, stride=2)
    # 9x9 input, no padding, stride 2 -> 4x4 output
    assert count_macs(conv, torch.randn(2, 2, 9, 9)) == 2 * 4 * 4 * 4 * 2 * 9


def test_grouped_conv() -> None:
    conv = nn.Conv2d(8, 12, kernel_size=3, padding=1, groups=4, bias=True)
    # each filter sees 8/4 = 2 input channels
    assert count_params(conv) == 12 * 2 * 9 + 12
    assert count_macs(conv, torch.randn(1, 8, 5, 5)) == 12 * 5 * 5 * 2 * 9


def test_depthwise_conv() -> None:
    conv = nn.Conv2d(6, 6, kernel_size=3, padding=1, groups=6, bias=True)
    assert count_params(conv) == 6 * 9 + 6
    assert count_macs(conv, torch.randn(1, 6, 4, 4)) == 6 * 4 * 4 * 9


class _TiedLM(nn.Module):
    def __init__(self, vocab: int = 11, dim: int = 5) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.embed(tokens))
        return out


def test_tied_embedding_counts_once() -> None:
    model = _TiedLM(vocab=11, dim=5)
    assert count_params(model) == 11 * 5
    # the embedding lookup is not a MAC; the head is 3 tokens x 5 x 11
    assert count_macs(model, torch.tensor([[1, 2, 3]])) == 3 * 5 * 11


def test_batchnorm_buffers_are_not_params() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.BatchNorm2d(4))
    assert count_params(model) == 4 + 2 * 4


class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 2)
        self.b = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.a(x) + self.b(y)
        return out


def test_inputs_as_tuple_list_and_dict() -> None:
    model = _TwoInputs()
    x, y = torch.randn(1, 3), torch.randn(1, 4)
    expected = 3 * 2 + 4 * 2
    assert count_macs(model, (x, y)) == expected
    assert count_macs(model, [x, y]) == expected
    assert count_macs(model, {"x": x, "y": y}) == expected


def test_training_flags_restored_and_no_grad() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.BatchNorm1d(2))
    model.train()
    model[2].eval()  # a mixed state must come back exactly
    running = model[2].running_mean.clone()
    count_macs(model, torch.randn(4, 2))
    assert model.training and model[1].training and not model[2].training
    assert torch.equal(model[2].running_mean, running)
    assert all(p.grad is None for p in model.parameters())


def test_training_flag_restored_on_error() -> None:
    model = nn.Linear(3, 2).train()
    try:
        count_macs(model, torch.randn(1, 5))
    except RuntimeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("shape mismatch should raise")
    assert model.training


def test_cost_report() -> None:
    report = measure_cost(_mlp(), torch.randn(1, 8))
    assert report == CostReport(params=8 * 16 + 16 + 16 * 4, macs=8 * 16 + 16 * 4)
    assert report.to_dict() == {"params": report.params, "macs": report.macs}
