"""Regression errors and embedding cosine fidelity against hand computations and sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from prunekit.errors import ConfigError
from prunekit.evaluation import (
    EmbeddingFidelity,
    RegressionQuality,
    cosine_fidelity,
    cosine_similarities,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    regression_quality,
)

PRED = [2.5, 0.0, 2.0, 8.0]
TRUE = [3.0, -0.5, 2.0, 7.0]
# errors: -0.5, 0.5, 0, 1 ; mean target 2.875


def test_regression_by_hand() -> None:
    assert mean_absolute_error(PRED, TRUE) == pytest.approx((0.5 + 0.5 + 0 + 1) / 4)
    assert mean_squared_error(PRED, TRUE) == pytest.approx((0.25 + 0.25 + 0 + 1) / 4)
    ss_res = 0.25 + 0.25 + 0 + 1
    ss_tot = sum((t - 2.875) ** 2 for t in TRUE)
    assert r2_score(PRED, TRUE) == pytest.approx(1 - ss_res / ss_tot)
    q = regression_quality(PRED, TRUE)
    assert q.rmse == pytest.approx(math.sqrt(0.375))
    assert q.num_samples == 4
    assert RegressionQuality.from_dict(q.to_dict()) == q


def test_regression_matches_sklearn_multioutput() -> None:
    rng = np.random.default_rng(1)
    true = rng.normal(size=(50, 3))
    pred = true + rng.normal(scale=0.5, size=(50, 3))
    assert mean_absolute_error(pred, true) == pytest.approx(skm.mean_absolute_error(true, pred))
    assert mean_squared_error(pred, true) == pytest.approx(skm.mean_squared_error(true, pred))
    assert r2_score(pred, true) == pytest.approx(skm.r2_score(true, pred))


def test_r2_constant_targets_follow_sklearn() -> None:
    assert r2_score([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert r2_score([1.0, 2.0], [1.0, 1.0]) == 0.0
    assert r2_score([1.0, 2.0], [1.0, 1.0]) == skm.r2_score([1.0, 1.0], [1.0, 2.0])


def test_column_predictions_against_flat_targets() -> None:
    assert mean_absolute_error(torch.tensor([[1.0], [2.0]]), torch.tensor([1.0, 4.0])) == 1.0
    with pytest.raises(ConfigError, match="equal shapes"):
        mean_absolute_error(torch.zeros(2, 3), torch.zeros(3, 2))


def test_cosine_by_hand() -> None:
    emb = [[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, 0.0]]
    ref = [[3.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 0.0]]
    cos = cosine_similarities(emb, ref).tolist()
    assert cos == pytest.approx([1.0, 1 / math.sqrt(2), -1.0, 1.0])  # zero vs zero counts as 1
    f = cosine_fidelity(emb, ref)
    assert f.mean == pytest.approx((1 + 1 / math.sqrt(2) - 1 + 1) / 4)
    assert f.min == -1.0 and f.num_samples == 4
    assert EmbeddingFidelity.from_dict(f.to_dict()) == f


def test_cosine_flattens_and_checks_width() -> None:
    emb = torch.randn(5, 2, 3)
    assert cosine_fidelity(emb, emb * 2).mean == pytest.approx(1.0)
    assert cosine_similarities([[1.0, 0.0]], [[0.0, 0.0]]).tolist() == [0.0]
    with pytest.raises(ConfigError, match="features"):
        cosine_fidelity(torch.zeros(2, 4), torch.zeros(2, 3))
