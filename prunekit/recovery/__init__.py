"""Recovery after pruning: BN re-estimation (:func:`reestimate_bn`), fine-tuning, distillation, weight noise,
retraining-free compensation, and sparsity regularisers to train with before pruning.

This package imports nothing at module level that imports the pruner, so
``prunekit.pruner`` may use :func:`reestimate_bn`.
"""

from .batchnorm import batchnorm_layers, inherit_bn_statistics, recalibrate_bn, reestimate_bn
from .compensation import CompensationReport, LayerCompensation, compensate, kept_outputs_from
from .config import EpochRecord, FinetuneConfig, FinetuneResult
from .distill import Distillation, kd_loss, mean_pool
from .finetune import finetune
from .losses import accuracy, task_loss
from .noise import NoiseInjection
from .optimizers import available_optimizers, build_optimizer, register_optimizer
from .regularize import BNScaleL1, GroupLasso
from .schedules import available_lr_schedules, lr_factor, register_lr_schedule

__all__ = [
    "BNScaleL1",
    "CompensationReport",
    "Distillation",
    "EpochRecord",
    "FinetuneConfig",
    "FinetuneResult",
    "GroupLasso",
    "LayerCompensation",
    "NoiseInjection",
    "accuracy",
    "available_lr_schedules",
    "available_optimizers",
    "batchnorm_layers",
    "inherit_bn_statistics",
    "build_optimizer",
    "compensate",
    "finetune",
    "kd_loss",
    "kept_outputs_from",
    "lr_factor",
    "mean_pool",
    "recalibrate_bn",
    "reestimate_bn",
    "register_lr_schedule",
    "register_optimizer",
    "task_loss",
]
