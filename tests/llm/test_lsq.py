"""Least-squares compensation of a consumer layer (prunekit.llm.lsq) against numpy's lstsq
on a tiny layer, and as an option of prune_blockwise for any criterion."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError, DataError
from prunekit.llm import ChannelStats, lsq_refit, lsq_solution, prune_blockwise
from tests.llm.tiny import TINY_VOCAB, make_tiny_llama


def _layer_and_data(bias: bool) -> tuple[nn.Linear, torch.Tensor]:
    torch.manual_seed(0)
    lin = nn.Linear(6, 4, bias=bias).double()
    x = (torch.randn(200, 6) @ torch.randn(6, 6) + torch.arange(6.0)).double()  # correlated
    return lin, x


def _stats(x: torch.Tensor) -> ChannelStats:
    s = ChannelStats(x.shape[1], gram=True)
    s.add(x[:120])
    s.add(x[120:])
    return s


@pytest.mark.parametrize("bias", [False, True])
def test_lsq_solution_equals_numpy_lstsq(bias: bool) -> None:
    lin, x = _layer_and_data(bias)
    keep = torch.tensor([0, 2, 3, 5])
    s = _stats(x)
    w, b = lsq_solution(lin.weight, lin.bias, keep, s.gram, s.sum, s.count, damp=0.0)
    xn, y = x.numpy(), lin(x).detach().numpy()
    aug = np.hstack([xn[:, keep.numpy()], np.ones((200, 1))])
    theta = np.linalg.lstsq(aug, y, rcond=None)[0]
    assert np.allclose(w.numpy(), theta[:4].T, atol=1e-8)
    assert np.allclose(b.numpy(), theta[4], atol=1e-8)


def test_damped_lsq_is_ridge_towards_the_unchanged_weights() -> None:
    lin, x = _layer_and_data(True)
    keep = torch.tensor([1, 2, 4])
    s = _stats(x)
    damp = 0.05
    w, b = lsq_solution(lin.weight, lin.bias, keep, s.gram, s.sum, s.count, damp=damp)
    xn, y = x.numpy(), lin(x).detach().numpy()
    aug = np.hstack([xn[:, keep.numpy()], np.ones((200, 1))])
    mu = damp * np.mean(np.diag(aug.T @ aug))
    theta0 = np.vstack([lin.weight.detach().numpy()[:, keep.numpy()].T, lin.bias.detach().numpy()])
    big_a = np.vstack([aug, np.sqrt(mu) * np.eye(4)])
    big_y = np.vstack([y, np.sqrt(mu) * theta0])
    theta = np.linalg.lstsq(big_a, big_y, rcond=None)[0]
    assert np.allclose(w.numpy(), theta[:3].T, atol=1e-8)
    assert np.allclose(b.numpy(), theta[3], atol=1e-8)


def test_lsq_refit_beats_bias_and_none_on_the_calibration_tokens() -> None:
    lin, x = _layer_and_data(False)
    keep, removed = torch.tensor([0, 2, 3, 5]), torch.tensor([1, 4])
    target = lin(x).detach()
    s = _stats(x)
    refit = copy.deepcopy(lin)
    lsq_refit(refit, keep, s, damp=0.0)
    assert refit.bias is not None  # created: the ones column absorbs the mean
    err_lsq = (x[:, keep] @ refit.weight[:, keep].T + refit.bias - target).norm()
    biased = lin.weight[:, removed] @ s.mean[removed]
    err_bias = (x[:, keep] @ lin.weight[:, keep].T + biased - target).norm()
    err_none = (x[:, keep] @ lin.weight[:, keep].T - target).norm()
    assert err_lsq < err_bias < err_none


def test_lsq_needs_a_gram_matrix() -> None:
    lin, x = _layer_and_data(False)
    s = ChannelStats(6)
    s.add(x)
    with pytest.raises(DataError, match="gram=True"):
        lsq_refit(lin, torch.tensor([0, 1]), s)


@pytest.mark.parametrize("criterion", ["wanda_sp", "activation", "magnitude"])
def test_prune_blockwise_lsq_for_any_criterion(criterion: str) -> None:
    model = make_tiny_llama()
    ids = torch.randint(0, TINY_VOCAB, (4, 16), generator=torch.Generator().manual_seed(1))
    res = prune_blockwise(model, ids, criterion=criterion, compensation="lsq", ffn_ratio=0.25)
    assert res.compensation == "lsq" and res.model.config.mlp_bias
    plain = prune_blockwise(model, ids, criterion=criterion, compensation="none", ffn_ratio=0.25)
    assert res.removed == plain.removed  # lsq changes the weights, not the choice
    with torch.no_grad():
        dense, lsq, none = (m(ids).logits for m in (model, res.model, plain.model))
    assert (lsq - dense).norm() < (none - dense).norm()


def test_bias_compensation_is_a_deprecated_alias() -> None:
    model = make_tiny_llama()
    ids = torch.randint(0, TINY_VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = prune_blockwise(
            model, ids, criterion="wanda_sp", ffn_ratio=0.25, bias_compensation=True
        )
    assert res.compensation == "bias" and res.bias_compensation
    assert any(issubclass(w.category, DeprecationWarning) for w in seen)
    with pytest.raises(ConfigError, match="not both"):
        prune_blockwise(model, ids, ffn_ratio=0.25, compensation="bias", bias_compensation=False)
    with pytest.raises(ConfigError, match=r"compensation='ols'.*'lsq'"):
        prune_blockwise(model, ids, ffn_ratio=0.25, compensation="ols")
