"""Regression quality: mean absolute error, mean squared error, RMSE and R².

For several outputs per sample (``(N, D)``), MAE and MSE average over every element and R² is
the mean of the per-output R² (sklearn's ``multioutput="uniform_average"``). R² of an output
whose targets are constant is 1 for a perfect fit and 0 otherwise (sklearn's convention).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from prunekit.errors import ConfigError
from prunekit.evaluation._arrays import ArrayLike, as_tensor, check_rows

__all__ = [
    "RegressionQuality",
    "mean_absolute_error",
    "mean_squared_error",
    "r2_score",
    "regression_quality",
]


def mean_absolute_error(preds: ArrayLike, targets: ArrayLike) -> float:
    """Mean of ``|pred - target|`` over every element.

    Example:
        >>> mean_absolute_error([1.0, 2.0, 4.0], [1.0, 3.0, 2.0])  # (0 + 1 + 2) / 3
        1.0
    """
    pred, true = _pair(preds, targets)
    return float((pred - true).abs().mean())


def mean_squared_error(preds: ArrayLike, targets: ArrayLike) -> float:
    """Mean of ``(pred - target)²`` over every element.

    Example:
        >>> mean_squared_error([1.0, 2.0, 4.0], [1.0, 3.0, 2.0])  # (0 + 1 + 4) / 3
        1.6666666666666667
    """
    pred, true = _pair(preds, targets)
    return float(((pred - true) ** 2).mean())


def r2_score(preds: ArrayLike, targets: ArrayLike) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``, averaged over outputs.

    Example:
        >>> # SS_res = 0 + 1 + 4 = 5; mean target 2, SS_tot = 1 + 1 + 0 = 2
        >>> r2_score([1.0, 2.0, 4.0], [1.0, 3.0, 2.0])
        -1.5
    """
    pred, true = _pair(preds, targets)
    pred, true = pred.reshape(pred.shape[0], -1), true.reshape(true.shape[0], -1)
    ss_res = ((true - pred) ** 2).sum(dim=0)
    ss_tot = ((true - true.mean(dim=0)) ** 2).sum(dim=0)
    constant = ss_tot == 0
    r2 = 1.0 - ss_res / torch.where(constant, torch.ones_like(ss_tot), ss_tot)
    r2 = torch.where(constant, (ss_res == 0).double(), r2)
    return float(r2.mean())


@dataclass
class RegressionQuality:
    """Regression metrics of one model on one dataset.

    Example:
        >>> q = regression_quality([1.0, 2.0, 4.0], [1.0, 3.0, 2.0])
        >>> q.mae, q.r2, q.to_dict()["num_samples"]
        (1.0, -1.5, 3)
    """

    num_samples: int
    mae: float
    mse: float
    rmse: float
    r2: float

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegressionQuality:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)


def regression_quality(preds: ArrayLike, targets: ArrayLike) -> RegressionQuality:
    """MAE, MSE, RMSE and R² of ``preds`` against ``targets`` (shapes ``(N,)`` or ``(N, D)``).

    Example:
        >>> regression_quality([0.0, 2.0], [0.0, 2.0]).r2
        1.0
    """
    pred, _ = _pair(preds, targets)
    mse = mean_squared_error(preds, targets)
    return RegressionQuality(
        num_samples=int(pred.shape[0]),
        mae=mean_absolute_error(preds, targets),
        mse=mse,
        rmse=math.sqrt(mse),
        r2=r2_score(preds, targets),
    )


def _pair(preds: ArrayLike, targets: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    pred = as_tensor(preds, "preds").double()
    true = as_tensor(targets, "targets").double()
    if pred.dim() == 2 and pred.shape[1] == 1 and true.dim() == 1:
        pred = pred[:, 0]  # (N, 1) predictions against (N,) targets
    if true.dim() == 2 and true.shape[1] == 1 and pred.dim() == 1:
        true = true[:, 0]
    if pred.shape != true.shape or pred.dim() == 0:
        raise ConfigError(
            f"preds has shape {tuple(pred.shape)} and targets {tuple(true.shape)}; regression "
            "needs equal shapes (N,) or (N, D)"
        )
    check_rows(pred, true, "preds and targets")
    return pred, true
