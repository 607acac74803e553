"""Least-squares reconstruction helpers: im2col rows, normal equations, kept-row inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunekit.recovery.reconstruct import (
    NormalEquations,
    design_rows,
    infer_kept_rows,
    layer_params,
    target_rows,
)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.Conv2d(3, 4, (3, 2), dilation=(2, 1), padding=(2, 0), bias=False),
        nn.Conv2d(3, 4, 4, padding="same"),
        nn.Conv2d(3, 4, 3, padding="valid"),
        nn.Conv1d(3, 4, 5, padding=2),
        nn.Conv1d(3, 4, 3, stride=2, dilation=2, padding=1, bias=False),
        nn.Conv1d(3, 4, 4, padding="same"),
    ],
)
def test_design_rows_reproduce_the_convolution(conv: nn.Conv1d | nn.Conv2d) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 8) if isinstance(conv, nn.Conv2d) else torch.randn(2, 3, 11)
    y = conv(x)
    rows = design_rows(conv, x)
    w = layer_params(conv).float()
    ones = torch.ones(rows.shape[0], 1)
    pred = (torch.cat([rows, ones], 1) if conv.bias is not None else rows) @ w.T
    torch.testing.assert_close(pred, target_rows(conv, y, range(4)), atol=1e-5, rtol=1e-5)


def test_linear_rows_on_sequences_and_kept_subset() -> None:
    lin = nn.Linear(5, 6)
    x = torch.randn(2, 7, 5)
    rows = design_rows(lin, x)
    assert rows.shape == (14, 5)
    kept = [1, 4]
    want = (rows @ lin.weight.T + lin.bias)[:, kept]
    torch.testing.assert_close(target_rows(lin, lin(x), kept), want)


def test_ridge_shrinks_weights_but_not_the_bias_and_error_is_exact() -> None:
    torch.manual_seed(0)
    x = torch.randn(200, 3)
    y = x @ torch.tensor([[2.0], [-1.0], [0.5]]) + 4.0
    eq = NormalEquations(bias=True)
    eq.add(x, y)
    exact, shrunk = eq.solve(0.0), eq.solve(10.0)
    assert eq.relative_error(exact) == pytest.approx(0.0, abs=1e-12)
    assert shrunk[0, :3].norm() < exact[0, :3].norm()
    # hand check of the closed form for the shrunk solution (bias column unpenalised)
    xa = torch.cat([x, torch.ones(200, 1)], 1).double()
    lam = 10.0 * float((x.double() ** 2).sum(0).mean())
    reg = torch.diag(torch.tensor([lam, lam, lam, 0.0], dtype=torch.float64))
    want = torch.linalg.solve(xa.T @ xa + reg, xa.T @ y.double()).T
    torch.testing.assert_close(shrunk, want)
    sse = float(((xa @ shrunk.T - y.double()) ** 2).sum())
    assert eq.relative_error(shrunk) == pytest.approx(sse / float((y.double() ** 2).sum()))


def test_singular_system_falls_back_to_the_pseudo_inverse() -> None:
    x = torch.zeros(10, 2)
    x[:, 0] = torch.arange(10.0)
    eq = NormalEquations(bias=False)
    eq.add(x, 3 * x[:, :1])
    torch.testing.assert_close(eq.solve(0.0), torch.tensor([[3.0, 0.0]], dtype=torch.float64))


def test_infer_kept_rows_linear_and_conv_and_failures() -> None:
    torch.manual_seed(0)
    w = torch.randn(8, 6)
    assert infer_kept_rows(w[[0, 3, 7]][:, [1, 2, 5]], w) == [0, 3, 7]
    assert infer_kept_rows(w[:, [0, 1]], w) == list(range(8))  # no row removed
    k = torch.randn(5, 4, 3, 3)
    assert infer_kept_rows(k[[2, 4]][:, [0, 3]], k) == [2, 4]
    assert infer_kept_rows(w[[3, 0]][:, [1, 2]], w) is None  # out of order: not a cut
    tied = torch.ones(4, 3)  # every row identical: ambiguous
    assert infer_kept_rows(tied[[1, 2]], tied) is None
