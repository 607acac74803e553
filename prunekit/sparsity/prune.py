"""Weight-level (unstructured or N:M) pruning: score every weight, mask the lowest.

On CPU this saves bytes, not time: a masked (or baked) model still runs dense kernels,
which multiply the zeros like any other value (measured: a 2048x2048 Linear, batch 64, one
thread: 9.5 ms dense, 9.5 ms at 50%, 90% and 2:4 sparsity). Only a sparse format pays off,
and only when very sparse: ``torch.sparse.mm`` with a CSR weight took 19.8 ms at 50%,
4.2 ms at 90% and 0.5 ms at 99% on the same layer; prunekit does not convert modules to
sparse formats. Store the result compactly with :func:`prunekit.sparsity.save_sparse`. N:M
(2:4) masks match what NVIDIA sparse tensor cores accelerate; no GPU speed-up is measured or
claimed here.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..allocation.candidates import ignored_names
from ..errors import ConfigError
from ..importance.calibration import Calibration, LossFn
from ..importance.stats import CalibrationStats
from .masks import SCOPES, global_masks, nm_mask, parse_pattern, row_mask, unstructured_mask
from .parametrize import apply_mask, has_masks, make_permanent, masks_of
from .scores import WeightCriterion, get_weight_criterion
from .targets import as_list, input_dim_of, output_dim_of, weight_of, weight_targets

__all__ = ["prune_weights"]

Scores = Mapping[str, torch.Tensor]


def _check_sizing(sparsity: float | None, pattern: Any, scope: str) -> tuple[int, int] | None:
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r} is unknown; use one of {SCOPES}")
    if (sparsity is None) == (pattern is None):
        raise ConfigError(
            f"pass exactly one of sparsity= (a fraction, e.g. 0.5) or pattern= ('2:4'); got "
            f"sparsity={sparsity!r}, pattern={pattern!r}"
        )
    if pattern is not None and scope != "local":
        raise ConfigError(f"pattern={pattern!r} is per group of M weights; drop scope={scope!r}")
    return None if pattern is None else parse_pattern(pattern)


def _nm_targets(targets: dict[str, nn.Module], m: int) -> dict[str, nn.Module]:
    kept, skipped = {}, []
    for name, mod in targets.items():
        w = weight_of(mod)
        dim = input_dim_of(mod, w) if w is not None else None
        if w is not None and dim is not None and w.shape[dim] % m == 0:
            kept[name] = mod
        else:
            skipped.append(f"{name} ({'unknown' if dim is None or w is None else w.shape[dim]})")
    if skipped:
        warnings.warn(
            f"N:M with M={m} skips layers whose input dim is not a multiple of {m}: "
            f"{', '.join(skipped[:8])}{' ...' if len(skipped) > 8 else ''}; they stay dense",
            UserWarning,
            stacklevel=3,
        )
    if not kept:
        raise ConfigError(f"no layer has an input dim divisible by M={m}; pick a smaller M")
    return kept


def _in_dim(module: nn.Module, scores: torch.Tensor) -> int:
    dim = input_dim_of(module, scores)
    if dim is None:  # _nm_targets keeps only layers with a known input dim
        raise ConfigError(f"{type(module).__name__} has no known input dim for an N:M mask")
    return dim


def _stats(
    model: nn.Module,
    criterion: WeightCriterion,
    data: Iterable[Any] | None,
    loss_fn: LossFn | None,
    batches: int | None,
    calibration: Calibration | None,
) -> CalibrationStats | None:
    if not criterion.needs:
        return None
    if calibration is None:
        if data is None:
            raise ConfigError(
                f"importance={criterion.name!r} needs calibration batches: pass data=loader"
            )
        if criterion.needs_loss and loss_fn is None:
            raise ConfigError(
                f"importance={criterion.name!r} needs gradients: pass loss_fn=(output, batch) -> loss"
            )
        calibration = Calibration(data, loss_fn, batches)
    calibration.request(*criterion.needs)
    plain = make_permanent(copy.deepcopy(model)) if has_masks(model) else model
    return calibration.collect(plain)


def _scores(
    targets: dict[str, nn.Module],
    importance: str | WeightCriterion | Scores,
    stats_fn: Callable[[WeightCriterion], CalibrationStats | None],
) -> dict[str, torch.Tensor]:
    if isinstance(importance, Mapping):
        out = {}
        for name, mod in targets.items():
            w = weight_of(mod)
            s = importance.get(name)
            if s is None or w is None or tuple(s.shape) != tuple(w.shape):
                raise ConfigError(
                    f"importance scores for layer {name!r} are missing or shaped "
                    f"{None if s is None else tuple(s.shape)}; give one tensor shaped like its "
                    f"weight {None if w is None else tuple(w.shape)} for every layer"
                )
            out[name] = s.detach().float()
        return out
    criterion = get_weight_criterion(importance)
    stats = stats_fn(criterion)
    out = {}
    for name, mod in targets.items():
        w = weight_of(mod)
        if w is not None:  # always: weight_targets keeps only modules with a weight
            out[name] = criterion(name, mod, w, stats).float()
    return out


def prune_weights(
    model: nn.Module,
    sparsity: float | None = None,
    *,
    pattern: str | tuple[int, int] | None = None,
    importance: str | WeightCriterion | Scores = "magnitude",
    scope: str = "local",
    data: Iterable[Any] | None = None,
    loss_fn: LossFn | None = None,
    batches: int | None = None,
    calibration: Calibration | None = None,
    ignore: Any = (),
    layers: Iterable[str] | None = None,
    inplace: bool = False,
) -> nn.Module:
    """Zero the lowest-scoring single weights, kept at zero by masks during fine-tuning.

    Masks are ``torch.nn.utils.parametrize`` parametrizations (see
    :func:`~prunekit.sparsity.make_permanent`); pruning an already masked model tightens its
    masks (weights pruned before are pruned first), so iterative schedules work.

    Args:
        model: the model; copied unless ``inplace``.
        sparsity: fraction of weights to zero, in [0, 1). Exactly ``floor(sparsity * n)``
            per layer (``local``), per output unit (``row``, Wanda's grouping; per layer it
            lands at most one weight per row under), or over all layers (``global``).
        pattern: instead of ``sparsity``, N:M semi-structured masks (``"2:4"``, ``"4:8"``):
            keep N of every M consecutive weights along the input dim; layers whose input
            dim is not a multiple of M are skipped with a warning.
        importance: ``"magnitude"`` (``|w|``; also ``"l1"``/``"l2"``), ``"wanda"``
            (``|w| * rms(x_j)``, needs ``data``), ``"taylor"`` (``|mean_b w*g|``, needs
            ``data`` and ``loss_fn``), ``"random"``, a :class:`WeightCriterion`, or a dict
            of precomputed scores (layer name -> tensor shaped like its weight).
        scope: ``"local"``, ``"row"`` or ``"global"`` (needs comparable scores across layers).
        data, loss_fn, batches, calibration: calibration batches, as for
            :class:`prunekit.importance.Calibration` (or one passed ready-made).
        ignore: modules or names to keep dense (e.g. an embedding, the output head).
        layers: only modules whose names match these globs.
        inplace: mask ``model`` itself.

    Returns:
        The masked model; ``prunekit.sparsity.sparsity_summary(model)`` reports per layer.

    Example:
        >>> import torch
        >>> from prunekit.sparsity import prune_weights, sparsity_summary, make_permanent
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
        >>> masked = prune_weights(net, 0.75)
        >>> [round(layer.sparsity, 2) for layer in sparsity_summary(masked).layers]
        [0.75, 0.75]
        >>> nm = make_permanent(prune_weights(net, pattern="2:4"))
        >>> bool((nm[0].weight.reshape(16, 2, 4) != 0).sum(-1).le(2).all())
        True
    """
    nm = _check_sizing(sparsity, pattern, scope)
    skip = sorted(ignored_names(model, as_list(ignore)))  # names: they hold in the copy too
    work = model if inplace else copy.deepcopy(model)
    targets = weight_targets(work, ignore=skip, layers=layers)
    if nm is not None:
        targets = _nm_targets(targets, nm[1])
    if not targets:
        raise ConfigError("no module with a weight of >= 2 dims is left to prune; check ignore=")
    scores = _scores(
        targets, importance, lambda c: _stats(work, c, data, loss_fn, batches, calibration)
    )
    old = masks_of(work)
    for name, mask in old.items():
        if name in scores:  # weights pruned before go first
            scores[name] = scores[name].masked_fill(~mask.to(scores[name].device), float("-inf"))
    if nm is not None:
        masks = {n: nm_mask(s, *nm, in_dim=_in_dim(targets[n], s)) for n, s in scores.items()}
    elif scope == "global":
        masks = global_masks(scores, float(sparsity or 0.0))
    elif scope == "row":
        masks = {
            n: row_mask(s, float(sparsity or 0.0), output_dim_of(targets[n], s))
            for n, s in scores.items()
        }
    else:
        masks = {n: unstructured_mask(s, float(sparsity or 0.0)) for n, s in scores.items()}
    for name, mask in masks.items():
        apply_mask(targets[name], mask)
    return work
