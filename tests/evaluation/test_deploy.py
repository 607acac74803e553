"""The inference form used for deployment latency: folded BatchNorm, channels-last."""

from __future__ import annotations

import torch
from torch import nn

from prunekit.evaluation import inference_form, measure_latency


def _conv_bn() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 3),
    )  # fmt: skip
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    return net.eval()


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.conv(x))
        return h if h.sum() > 0 else -h


def test_folds_every_batchnorm_and_keeps_the_function() -> None:
    net = _conv_bn()
    x = torch.randn(4, 3, 8, 8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast, form = inference_form(net, x)
    assert form == "bn-folded+channels-last"
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert torch.allclose(fast(x), net(x), atol=1e-5)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # untouched
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_untraceable_model_keeps_its_batchnorm_and_says_so() -> None:
    net = Branchy().eval()
    x = torch.randn(2, 3, 6, 6)
    fast, form = inference_form(net, x)
    assert form == "bn-not-folded+channels-last"
    assert torch.allclose(fast(x), net(x), atol=1e-6)


def test_non_image_model_without_batchnorm_is_timed_as_is() -> None:
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    _, form = inference_form(net, torch.randn(1, 5))
    assert form == "as-is"


def test_measure_latency_reports_the_form_it_timed() -> None:
    net = _conv_bn()
    x = torch.randn(1, 3, 8, 8)
    plain = measure_latency(net, x, warmup=0, runs=2)
    deployed = measure_latency(net, x, warmup=0, runs=2, deploy=True)
    assert plain.form == "as-is"
    assert deployed.form == "bn-folded+channels-last"
    assert deployed.to_dict()["form"] == deployed.form
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
