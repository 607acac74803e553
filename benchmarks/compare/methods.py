"""The methods compared: prunekit configurations, Torch-Pruning, torch.nn.utils.prune, random.

Every method is a registered function ``cut(model, ctx, level) -> Cut`` that returns a new
model (the input is never modified). ``level`` is a MACs reduction factor (``ctx.kind ==
"macs"``) or a fraction of hidden neurons to remove (``"neurons"``). Suffixes change only the
recovery of the same cut and combine (``pk-l2-local+comp+kd``): ``+comp`` least-squares
compensation of the pruned layers on the calibration batches, ``+kd`` distillation from the
unpruned model, ``+noise`` weight noise during fine-tuning.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune as torch_prune

import prunekit
from prunekit.errors import RegistryError
from prunekit.evaluation import count_macs
from prunekit.importance import Fuse, Taylor

from .matching import bisect_ratio, scan_ratio
from .training import ce_loss, classifier_of

__all__ = ["Cut", "CutContext", "METHODS", "method_names", "recovery_variants", "run_method",
           "tool_of"]  # fmt: skip

MAX_RATIO = 0.9  # no tool may remove more than 90% of any layer


@dataclass
class CutContext:
    """What a cut may use: example input, calibration batches, budget kind, MACs before."""

    example: torch.Tensor
    calib: list[Any]
    kind: str
    base_macs: int
    seed: int = 0


@dataclass
class Cut:
    """A pruned model and how it was made."""

    model: nn.Module
    prune_s: float
    search_s: float
    ratio: float | None = None
    sparsity: float | None = None
    notes: list[str] = field(default_factory=list)


CutFn = Callable[[nn.Module, CutContext, float], Cut]
METHODS: dict[str, CutFn] = {}


RECOVERY_VARIANTS = ("+comp", "+kd", "+noise")
"""Suffixes that change only the recovery: least-squares compensation of the pruned layers
(:func:`prunekit.recovery.compensate`, retraining-free, on the calibration batches) before
BatchNorm recalibration, distillation from the unpruned model, or Gaussian weight noise with a
decaying scale during fine-tuning. They combine in this order (``+comp+kd``)."""


def base_method(name: str) -> str:
    """``name`` without its recovery suffixes (``pk-l2-local+comp+kd`` -> ``pk-l2-local``)."""
    return name.split("+", 1)[0]


def recovery_variants(name: str) -> tuple[str, ...]:
    """The recovery suffixes of ``name``, e.g. ``("+comp", "+kd")``.

    Raises:
        RegistryError: If a suffix is not one of :data:`RECOVERY_VARIANTS`.
    """
    found = tuple("+" + v for v in name.split("+")[1:])
    unknown = [v for v in found if v not in RECOVERY_VARIANTS]
    if unknown:
        raise RegistryError(
            f"benchmark method {name!r}: recovery suffix {unknown} unknown; "
            f"valid: {list(RECOVERY_VARIANTS)}"
        )
    return found


def _register(name: str) -> Callable[[CutFn], CutFn]:
    def deco(fn: CutFn) -> CutFn:
        if name in METHODS:
            raise RegistryError(f"benchmark method {name!r} is already registered")
        METHODS[name] = fn
        return fn

    return deco


def method_names() -> list[str]:
    """Every registered method, plus the recovery variants of the prunekit ones (each suffix
    alone, and ``+comp+kd``)."""
    pk = [n for n in METHODS if n.startswith("pk-")]
    variants = (*RECOVERY_VARIANTS, "+comp+kd")
    return sorted(METHODS) + sorted(f"{n}{v}" for n in pk for v in variants)


def tool_of(name: str) -> str:
    """``prunekit``, ``torch-pruning``, ``torch.nn.utils.prune`` or ``control``."""
    if name.startswith("pk-"):
        return "prunekit"
    if name.startswith("tp-"):
        return "torch-pruning"
    if name.startswith("torch-"):
        return "torch.nn.utils.prune"
    return "control"


def run_method(name: str, model: nn.Module, ctx: CutContext, level: float) -> Cut:
    """Run method ``name`` (recovery suffixes stripped: they act after the cut) on a copy."""
    base = base_method(name)
    recovery_variants(name)
    if base not in METHODS:
        raise RegistryError(f"benchmark method {name!r} unknown; valid: {method_names()}")
    torch.manual_seed(ctx.seed)
    return METHODS[base](model, ctx, level)


def _macs(ctx: CutContext) -> Callable[[nn.Module], int]:
    return lambda m: count_macs(m, ctx.example)


def _timed(fn: Callable[[], nn.Module]) -> tuple[nn.Module, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _ratio_cut(cut: Callable[[float], nn.Module], ctx: CutContext, level: float,
               trial: Callable[[float], nn.Module] | None = None, scan: bool = False) -> Cut:  # fmt: skip
    """Neurons: cut at ``level``. MACs: bisect the ratio to ``base_macs / level`` with the
    (cheaper) ``trial`` cut (``scan``: search a grid instead, for cuts whose MACs are not
    monotone in the ratio), then time one full ``cut`` at the chosen ratio."""
    if ctx.kind == "neurons":
        model, secs = _timed(lambda: cut(level))
        return Cut(model, secs, 0.0, ratio=level)
    t0 = time.perf_counter()
    search_fn = scan_ratio if scan else bisect_ratio
    matched = search_fn(trial or cut, _macs(ctx), ctx.base_macs / level, hi=MAX_RATIO)
    search = time.perf_counter() - t0
    model, secs = _timed(lambda: cut(matched.ratio))
    how = "scanned (MACs not monotone in the ratio)" if scan else "bisected"
    notes = [f"ratio {how} to {matched.ratio:.3f} in {matched.trials} trials"]
    return Cut(model, secs, search, ratio=matched.ratio, notes=notes)


# ----------------------------------------------------------------------------- prunekit
def _pk_ratio(importance: Callable[[], Any], scope: str, round_to: int = 1) -> Callable[..., Cut]:
    def cut_fn(model: nn.Module, ctx: CutContext, level: float) -> Cut:
        def cut(r: float, verify: str = "exact") -> nn.Module:
            return prunekit.prune(model, ctx.example, ratio=r, importance=importance(),
                                  scope=scope, ignore=(classifier_of(model),),
                                  max_ratio=MAX_RATIO, round_to=round_to,
                                  verify=verify).model  # fmt: skip

        return _ratio_cut(cut, ctx, level, trial=lambda r: cut(r, "shapes"))

    return cut_fn


def _pk_budget(importance: Callable[[], Any], round_to: int = 1) -> Callable[..., Cut]:
    """Global ranking with prunekit's own exact MACs budget (``target_macs``)."""

    def cut_fn(model: nn.Module, ctx: CutContext, level: float) -> Cut:
        if ctx.kind == "neurons":
            return _pk_ratio(importance, "global", round_to)(model, ctx, level)
        res, secs = _timed(lambda: prunekit.prune(
            model, ctx.example, target_macs=1.0 / level, importance=importance(),
            scope="global", ignore=(classifier_of(model),), max_ratio=MAX_RATIO,
            round_to=round_to).model)  # fmt: skip
        notes = ["prunekit target_macs budget search"]
        if round_to > 1:
            notes.append(f"widths rounded to multiples of {round_to} (vectorised CPU kernels)")
        return Cut(res, secs, 0.0, notes=notes)

    return cut_fn


def _taylor(ctx: CutContext) -> Callable[[], Any]:
    return lambda: Taylor(data=ctx.calib, loss_fn=ce_loss)


def _taylor_elem(ctx: CutContext) -> Callable[[], Any]:
    return lambda: Taylor(data=ctx.calib, loss_fn=ce_loss, variant="elementwise")


def _fuse(ctx: CutContext) -> Callable[[], Any]:
    return lambda: Fuse([Taylor(data=ctx.calib, loss_fn=ce_loss), "l2"], weights=[0.7, 0.3])


METHODS["pk-l2-local"] = lambda m, c, lv: _pk_ratio(lambda: "l2", "local")(m, c, lv)
METHODS["pk-taylor-local"] = lambda m, c, lv: _pk_ratio(_taylor(c), "local")(m, c, lv)
METHODS["pk-taylor-elem-local"] = lambda m, c, lv: _pk_ratio(_taylor_elem(c), "local")(m, c, lv)
METHODS["pk-taylor-global"] = lambda m, c, lv: _pk_budget(_taylor(c))(m, c, lv)
METHODS["pk-fuse-global"] = lambda m, c, lv: _pk_budget(_fuse(c))(m, c, lv)
METHODS["pk-l2-global"] = lambda m, c, lv: _pk_budget(lambda: "l2")(m, c, lv)
METHODS["pk-lamp-global"] = lambda m, c, lv: _pk_budget(lambda: "lamp")(m, c, lv)
METHODS["pk-l2-global-r8"] = lambda m, c, lv: _pk_budget(lambda: "l2", 8)(m, c, lv)
METHODS["pk-l2-global-r16"] = lambda m, c, lv: _pk_budget(lambda: "l2", 16)(m, c, lv)
METHODS["pk-taylor-global-r8"] = lambda m, c, lv: _pk_budget(_taylor(c), 8)(m, c, lv)
METHODS["pk-l2-local-r8"] = lambda m, c, lv: _pk_ratio(lambda: "l2", "local", 8)(m, c, lv)
METHODS["random-local"] = lambda m, c, lv: _pk_ratio(lambda: "random", "local")(m, c, lv)


# ------------------------------------------------------------------------ Torch-Pruning
_TP_IMPORTANCE: dict[str, Callable[[], Any]] = {
    "l2": lambda: tp.importance.MagnitudeImportance(p=2),
    "taylor": lambda: tp.importance.TaylorImportance(),
    "lamp": lambda: tp.importance.LAMPImportance(p=2),
    "bn": lambda: tp.importance.BNScaleImportance(),
}


def _tp_cut(model: nn.Module, ctx: CutContext, crit: str, global_: bool, r: float,
            round_to: int | None = None) -> nn.Module:  # fmt: skip
    net = copy.deepcopy(model).eval()
    pruner = tp.pruner.MetaPruner(
        net, ctx.example, importance=_TP_IMPORTANCE[crit](), global_pruning=global_,
        pruning_ratio=r, max_pruning_ratio=MAX_RATIO, ignored_layers=[classifier_of(net)],
        round_to=round_to,
    )  # fmt: skip
    if crit == "taylor":  # TP's Taylor reads .grad: accumulate it on the calibration data
        net.zero_grad()
        for batch in ctx.calib:
            ce_loss(net(batch[0]), batch).backward()
    pruner.step()
    net.zero_grad(set_to_none=True)
    return net


def _tp(crit: str, global_: bool, round_to: int | None = None) -> CutFn:
    def cut_fn(model: nn.Module, ctx: CutContext, level: float) -> Cut:
        cut = _ratio_cut(lambda r: _tp_cut(model, ctx, crit, global_, r, round_to), ctx, level,
                         scan=round_to is not None)  # fmt: skip
        if round_to:
            cut.notes.append(f"widths rounded to multiples of {round_to} (vectorised CPU kernels)")
            cut.notes.append("Torch-Pruning with round_to: realised MACs are not monotone in "
                             "pruning_ratio, so the ratio is scanned on a 0.025 grid (the cut "
                             "meeting the budget with the least overshoot)")  # fmt: skip
        return cut

    return cut_fn


for _crit in _TP_IMPORTANCE:
    for _scope in ("local", "global"):
        _register(f"tp-{_crit}-{_scope}")(_tp(_crit, _scope == "global"))
_register("tp-l2-global-r8")(_tp("l2", True, 8))
_register("tp-l2-local-r8")(_tp("l2", False, 8))


# ---------------------------------------------------------------- torch.nn.utils.prune
@_register("torch-l1-unstructured")
def _torch_unstructured(model: nn.Module, ctx: CutContext, level: float) -> Cut:
    """Global L1 unstructured masks over every conv/linear weight but the classifier's;
    the fraction masked is ``1 - 1/level`` (MACs) or ``level`` (neurons). Masks stay
    attached (fine-tuning keeps them), so MACs and latency do not drop."""
    net = copy.deepcopy(model)
    clf = classifier_of(net)
    params = [(m, "weight") for m in net.modules()
              if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and m is not clf]  # fmt: skip
    amount = 1.0 - 1.0 / level if ctx.kind == "macs" else level
    t0 = time.perf_counter()
    torch_prune.global_unstructured(
        params, pruning_method=torch_prune.L1Unstructured, amount=amount
    )
    secs = time.perf_counter() - t0
    notes = [f"{amount:.0%} of weights masked; dense tensors, MACs and latency unchanged"]
    return Cut(net, secs, 0.0, sparsity=amount, notes=notes)


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold ``torch.nn.utils.prune`` masks into the weights (no-op for other models)."""
    for module in model.modules():
        if torch_prune.is_pruned(module) and hasattr(module, "weight_orig"):
            torch_prune.remove(module, "weight")
    return model
