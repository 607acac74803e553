"""Importance criteria: group -> one score per unit (higher = keep); fusion of criteria.

Data-free: ``l1``, ``l2``, ``fpgm``, ``lamp``, ``bn_scale``, ``random``. Data-driven (pass
an object holding the calibration data, e.g. ``Taylor(data=loader, loss_fn=fn)``):
``grad``, ``taylor``, ``taylor_sq``, ``fisher``/``obd``, ``activation``, ``apoz``,
``wanda``, ``loss``; set-aware (they rank sets of units, not units alone): ``reconstruction``
(greedy least-squares refit, ThiNet-style), ``obs`` (OBS group scores with the compensating
update); ``loss`` re-scores in chunks within one call by default (``chunks=32``).
Every data-driven criterion checks its calibration data first (:mod:`.health`).
"""

from .activation import ActivationMean, APoZ, Wanda
from .base import NORMALIZATIONS, Criterion, average_ranks, normalize_scores, spearman
from .calibration import Calibration
from .datadriven import DataCriterion
from .datafree import FPGM, LAMP, BNScale, is_norm_weight
from .fusion import Fuse
from .gradient import Fisher, MeanGradient, Taylor
from .health import CalibrationHealth, check_calibration
from .loss_contribution import LossContribution
from .magnitude import Magnitude, RandomImportance, unit_slices
from .obs import OBS
from .reconstruction import Reconstruction
from .registry import (
    FunctionCriterion,
    Importance,
    available_importances,
    get_importance,
    register_importance,
)
from .rescore import Rescored, rescore
from .setaware import SetAwareCriterion
from .stats import ACT_STATS, GRAD_STATS, CalibrationStats

__all__ = [
    "ACT_STATS",
    "APoZ",
    "ActivationMean",
    "BNScale",
    "Calibration",
    "CalibrationHealth",
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
    "OBS",
    "RandomImportance",
    "Reconstruction",
    "Rescored",
    "SetAwareCriterion",
    "Taylor",
    "Wanda",
    "available_importances",
    "check_calibration",
    "average_ranks",
    "get_importance",
    "is_norm_weight",
    "normalize_scores",
    "register_importance",
    "rescore",
    "spearman",
    "unit_slices",
]
