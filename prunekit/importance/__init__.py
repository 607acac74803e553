"""Importance criteria: group -> one score per unit (higher = keep); fusion of criteria.

Data-free: ``l1``, ``l2``, ``fpgm``, ``lamp``, ``bn_scale``, ``random``. Data-driven (pass
an object holding the calibration data, e.g. ``Taylor(data=loader, loss_fn=fn)``):
``grad``, ``taylor``, ``taylor_sq``, ``fisher``/``obd``, ``activation``, ``apoz``,
``wanda``, ``loss``.
"""

from .activation import ActivationMean, APoZ, Wanda
from .base import NORMALIZATIONS, Criterion, average_ranks, normalize_scores, spearman
from .calibration import Calibration
from .datadriven import DataCriterion
from .datafree import FPGM, LAMP, BNScale, is_norm_weight
from .fusion import Fuse
from .gradient import Fisher, MeanGradient, Taylor
from .loss_contribution import LossContribution
from .magnitude import Magnitude, RandomImportance, unit_slices
from .registry import (
    FunctionCriterion,
    Importance,
    available_importances,
    get_importance,
    register_importance,
)
from .stats import ACT_STATS, GRAD_STATS, CalibrationStats

__all__ = [
    "ACT_STATS",
    "APoZ",
    "ActivationMean",
    "BNScale",
    "Calibration",
    "CalibrationStats",
    "Criterion",
    "DataCriterion",
    "FPGM",
    "Fisher",
    "Fuse",
    "FunctionCriterion",
    "GRAD_STATS",
    "Importance",
    "LAMP",
    "LossContribution",
    "Magnitude",
    "MeanGradient",
    "NORMALIZATIONS",
    "RandomImportance",
    "Taylor",
    "Wanda",
    "available_importances",
    "average_ranks",
    "get_importance",
    "is_norm_weight",
    "normalize_scores",
    "register_importance",
    "spearman",
    "unit_slices",
]
