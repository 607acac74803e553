"""Recovery of a run: compensation, fine-tuning with distillation and noise, as configured."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..recipe import DataBundle, Recipe
from ..recovery import Distillation, NoiseInjection, compensate, finetune
from .cut import reestimate
from .ranks import ddp_training

__all__ = ["recover"]


def recover(
    pruned: nn.Module,
    original: nn.Module,
    recipe: Recipe,
    data: DataBundle,
    *,
    progress: bool = True,
    searched: bool = False,
) -> dict[str, Any]:
    """Run the recipe's recovery on ``pruned`` in place; return what was done (JSON-able).

    BatchNorm statistics are re-estimated after compensation and after fine-tuning, so the
    model is never evaluated with statistics of another set of weights.

    ``searched``: the cut is a search's winner. With ``recovery.compensate`` the search
    compensated every candidate right after its cut (:func:`~prunekit.pipeline.cut_search`),
    before its quick recovery changed the weights, so it is not refit here again (the kept
    units could no longer be read from the weights, and the refit would undo that recovery).
    """
    spec = recipe.recovery
    done: dict[str, Any] = {}
    if spec.compensate and searched:
        done["compensate"] = "every search candidate, right after its cut"
    elif spec.compensate:
        report = compensate(pruned, original, data.train, batches=8)
        done["compensate"] = report.to_dict()
        done["bn_samples_after_compensate"] = reestimate(pruned, data)
    ft = spec.finetune
    if ft is not None:
        distill = None
        if spec.distill is not None:
            distill = Distillation(
                original, temperature=spec.distill.temperature, alpha=spec.distill.alpha
            )
        noise = None
        if spec.noise is not None:
            noise = NoiseInjection(scale=spec.noise.scale, decay=spec.noise.decay)
        with ddp_training(pruned, data.train, data.val) as (model, train, val):  # torchrun
            result = finetune(
                model, train, optimizer=ft.optimizer, lr=ft.lr, epochs=ft.epochs,
                lr_schedule=ft.lr_schedule, val_data=val, patience=ft.patience,
                distill=distill, noise=noise, progress=progress, seed=recipe.data.seed,
            )  # fmt: skip
        done["finetune"] = result.to_dict()
        done["bn_samples_after_finetune"] = reestimate(pruned, data)
    pruned.eval()
    return done
