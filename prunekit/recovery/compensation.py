"""Retraining-free compensation: refit each pruned layer to reproduce the unpruned outputs.

After a structured cut, a layer that lost input channels sees ``X'`` instead of ``X`` and
its outputs drift. Channel-pruning reconstruction (He et al. 2017; ThiNet, Luo et al. 2017)
refits the layer's weight (and bias) by least squares so that ``X' W^T + b`` matches the
*unpruned* layer's outputs ``Y`` at the units the layer kept. Layers are refit one by one in
forward order, so each layer sees inputs that already come from compensated layers, and the
BatchNorm statistics the pruned model inherited from the original fit again (the refit
layer reproduces the original's output distribution).

Which original output units a pruned layer kept: pass ``kept_outputs`` (for example
:func:`kept_outputs_from` of the :class:`~prunekit.PruneResult`), or let them be inferred from
the weights. Inference relies on the fact that, right after a cut, the pruned weight is an
exact copy of ``W[kept_rows][:, kept_cols]``: each pruned row's largest kernel vectors are
looked up bit for bit in the original weight (:func:`~prunekit.recovery.reconstruct.infer_kept_rows`).
Once the weights have been trained further, pass ``kept_outputs``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import ConfigError, DataError, RecoveryError
from .batches import (
    InputsFn,
    batch_size,
    call_model,
    default_inputs,
    kept_indices,
    limited,
    model_device,
    to_device,
)
from .batchnorm import batchnorm_layers, inherit_bn_statistics
from .reconstruct import (
    NormalEquations,
    design_rows,
    geometry_of,
    infer_kept_rows,
    layer_bias,
    layer_params,
    layer_weight,
    target_rows,
)

if TYPE_CHECKING:
    from ..result import PruneResult

__all__ = ["CompensationReport", "LayerCompensation", "compensate", "kept_outputs_from"]

_IMPROVEMENT = 1e-9  # a refit replaces the weights only if its error is lower by this much


@dataclass
class LayerCompensation:
    """One refit layer: relative reconstruction error ``||X'W^T+b - Y||^2 / ||Y||^2``."""

    name: str
    kind: str
    kept_outputs: int
    original_outputs: int
    rows: int
    error_before: float
    error_after: float
    updated: bool


@dataclass
class CompensationReport:
    """What :func:`compensate` did, layer by layer.

    Attributes:
        layers: the layers refit, in forward order.
        skipped: layers not refit (and BatchNorms whose statistics were left), with the reason.
        samples: calibration samples used.
        bn_inherited: BatchNorms given the original's running statistics before the refits.

    Example:
        >>> r = CompensationReport([LayerCompensation("fc", "Linear", 4, 4, 32, 0.2, 0.05, True)])
        >>> r.to_dict()["layers"][0]["error_after"], r.updated
        (0.05, ['fc'])
    """

    layers: list[LayerCompensation] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    samples: int = 0
    bn_inherited: list[str] = field(default_factory=list)

    @property
    def updated(self) -> list[str]:
        """Names of the layers whose weights were replaced."""
        return [layer.name for layer in self.layers if layer.updated]

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict."""
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"{'layer':32}{'kept':>12}{'error before':>14}{'after':>10}"]
        for r in self.layers:
            kept = f"{r.kept_outputs}/{r.original_outputs}"
            lines.append(f"{r.name:32}{kept:>12}{r.error_before:>14.4f}{r.error_after:>10.4f}")
        lines.extend(f"{name:32}skipped: {why}" for name, why in self.skipped.items())
        return "\n".join(lines)


class _Stop(BaseException):
    """Ends a forward pass once the hooked layer has been seen (nothing after it is needed)."""


def kept_outputs_from(result: PruneResult) -> dict[str, list[int]]:
    """Per layer whose weight lost output rows in ``result``'s cut, the kept original rows.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
        >>> res = prunekit.prune(net, torch.randn(1, 4), ratio=0.5)
        >>> len(kept_outputs_from(res)["0"])
        3
    """
    if result.graph is None or len(result.steps) != 1:
        raise ConfigError(
            f"kept_outputs_from needs a one-step result (got {len(result.steps)} steps); "
            "pass result.steps[-1] for the last cut"
        )
    removals, _ = result.plan.removals(result.graph)
    modules = dict(result.model.named_modules())
    out: dict[str, list[int]] = {}
    for (tensor, dim), positions in removals.items():
        layer, _, attr = tensor.rpartition(".")
        if attr != "weight" or dim != 0 or layer not in modules:
            continue
        removed = {int(p) for p in positions}
        width = modules[layer].weight.shape[0] + len(removed)
        out[layer] = [i for i in range(width) if i not in removed]
    return out


def _pair(layer: nn.Module, original: nn.Module | None) -> tuple[nn.Module, nn.Module] | str:
    """``(layer, original)`` if ``layer`` can be refit against ``original``, else why not
    (the layers' refit geometry comes from their surgery handlers)."""
    geo = geometry_of(layer)
    if geo is None:
        return f"{type(layer).__name__} is not a Linear, Conv1d or Conv2d"
    if original is None or type(original) is not type(layer):
        return "no layer of the same type and name in the original model"
    geo_o = geometry_of(original)
    if isinstance(geo, str) or isinstance(geo_o, str):
        return geo if isinstance(geo, str) else str(geo_o)  # e.g. a grouped convolution
    if geo_o is None:
        return "the original layer cannot be refit"
    differ = geo.differences(geo_o)
    if differ:
        return f"{', '.join(differ)} differ from the original"
    if layer_weight(layer).shape[0] > layer_weight(original).shape[0]:
        return "it has more outputs than the original layer"
    return layer, original


def _forward_until(model: nn.Module, layer: nn.Module, inputs: Any, *, want_input: bool) -> Any:
    """Run ``model`` until ``layer``; return its input (first positional arg) or its output."""
    seen: list[Any] = []

    def pre(module: nn.Module, args: tuple[Any, ...]) -> None:
        seen.append(args[0])
        raise _Stop

    def post(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        seen.append(output)
        raise _Stop

    handle = (
        layer.register_forward_pre_hook(pre) if want_input else layer.register_forward_hook(post)
    )
    try:
        call_model(model, inputs)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not seen:
        raise RecoveryError(f"compensate: the layer was not called by {type(model).__name__}")
    return seen[0]


def _call_order(model: nn.Module, names: list[str], inputs: Any) -> dict[str, int]:
    """How often each named layer runs in one forward pass, in order of first call."""
    counts: dict[str, int] = {}
    handles = []
    for name in names:

        def count(module: nn.Module, args: Any, name: str = name) -> None:
            counts[name] = counts.get(name, 0) + 1

        handles.append(model.get_submodule(name).register_forward_pre_hook(count))
    try:
        with torch.no_grad():
            call_model(model, inputs)
    finally:
        for h in handles:
            h.remove()
    return counts


def _kept_rows(
    name: str, layer: nn.Module, original: nn.Module, given: Mapping[str, Sequence[int]] | None
) -> list[int]:
    weight, weight_o = layer_weight(layer), layer_weight(original)
    out_p, out_o = weight.shape[0], weight_o.shape[0]
    if given is not None and name in given:
        where = f"compensate: kept_outputs[{name!r}]"
        return kept_indices(where, given[name], out_p, out_o, "rows")
    inferred = infer_kept_rows(weight, weight_o)
    if inferred is None:
        raise RecoveryError(
            f"compensate: cannot tell which {out_p} of the original {out_o} outputs layer "
            f"{name!r} kept (its weights changed since the cut?); pass "
            "kept_outputs=kept_outputs_from(prune_result) or {name: [original indices]}"
        )
    return inferred


def _refit(
    name: str,
    layer: nn.Module,
    original: nn.Module,
    kept: list[int],
    pruned_model: nn.Module,
    original_model: nn.Module,
    batches: list[Any],
    ridge: float,
) -> LayerCompensation:
    """Accumulate the normal equations over ``batches`` and replace the weights if better."""
    weight, bias = layer_weight(layer), layer_bias(layer)
    eq = NormalEquations(bias=bias is not None)
    for x_p, x_o in batches:
        x = _forward_until(pruned_model, layer, x_p, want_input=True)
        y = _forward_until(original_model, original, x_o, want_input=False)
        eq.add(design_rows(layer, x), target_rows(layer, y, kept))
    before = eq.relative_error(layer_params(layer))
    solved = eq.solve(ridge)
    after = eq.relative_error(solved)
    updated = after < before - _IMPROVEMENT
    if updated:
        with torch.no_grad():
            w = solved[:, : weight[0].numel()]
            weight.copy_(w.reshape(weight.shape).to(weight))
            if bias is not None:
                bias.copy_(solved[:, -1].to(bias))
    return LayerCompensation(
        name, type(layer).__name__, len(kept), layer_weight(original).shape[0], eq.rows,
        before, after if updated else before, updated,
    )  # fmt: skip


def _layer_names(pruned: nn.Module, layers: Iterable[str] | None) -> list[str]:
    modules = dict(pruned.named_modules())
    if layers is None:
        return [n for n, m in modules.items() if geometry_of(m) is not None]
    names = [layers] if isinstance(layers, str) else list(layers)
    unknown = [n for n in names if n not in modules]
    if unknown:
        valid = [n for n, m in modules.items() if geometry_of(m) is not None]
        raise ConfigError(
            f"compensate: layers={unknown} are not modules of the pruned model; valid "
            f"Linear/Conv1d/Conv2d layers: {valid[:12]}"
        )
    return names


def compensate(
    pruned: nn.Module,
    original: nn.Module,
    data: Iterable[Any],
    *,
    batches: int | None = 8,
    layers: Iterable[str] | None = None,
    ridge: float = 1e-3,
    kept_outputs: Mapping[str, Sequence[int]] | None = None,
    inputs: InputsFn | None = None,
) -> CompensationReport:
    """Refit the pruned model's Linear/Conv1d/Conv2d layers to the unpruned outputs, in place.

    For each layer of ``pruned`` that has a counterpart of the same name and type in
    ``original`` (convolutions: ``groups=1``, same geometry), in forward order: collect the
    pruned layer's inputs ``X'`` (im2col patches for convolutions) and the original layer's
    outputs ``Y`` at the kept units on the calibration data (both models in eval mode), solve
    the ridge least squares ``min ||X' W^T + b - Y||^2 + lam ||W||^2``
    (``lam = ridge * mean(diag(X'^T X'))``, the bias is not penalised), and keep the new
    weights if they reconstruct better than the current ones. A layer called more than once
    per forward pass (shared) is skipped. Run it right after the cut, before any training.

    The refit layers reproduce the original outputs, for which the original BatchNorm
    statistics are the right ones, so every BatchNorm first gets the original's running
    statistics at the channels it kept (:func:`inherit_bn_statistics`; this undoes a
    recalibration made since the cut, which would otherwise skew every refit after it).
    Recalibrate BatchNorm afterwards (:func:`recalibrate_bn`): that also fixes the statistics
    behind the layers that could not be refit.

    Args:
        pruned: the pruned model (modified in place).
        original: the unpruned model (not modified).
        data: calibration batches (tensors, ``(x, y)`` tuples or dicts of keyword inputs).
        batches: use at most this many batches (``None``: all).
        layers: names of the layers to refit (default: every layer whose surgery handler
            gives a refit geometry, i.e. every Linear/Conv1d/Conv2d, that qualifies).
        ridge: relative ridge strength (see above); 0 is plain least squares.
        kept_outputs: layer name -> indices of the original output units it kept, e.g.
            ``kept_outputs_from(prune_result)``; inferred from the weights where missing.
        inputs: ``inputs(batch) -> model inputs``; default ``batch[0]``, or the dict itself.

    Returns:
        A :class:`CompensationReport` with each layer's relative error before and after.

    Raises:
        DataError: ``data`` yielded no batch.
        RecoveryError: the kept outputs of a layer cannot be inferred (pass ``kept_outputs``).

    Example:
        >>> import torch, prunekit
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        >>> small = prunekit.prune(net, torch.randn(1, 6), ratio=0.5).model
        >>> report = compensate(small, net, [torch.randn(64, 6)])
        >>> report.updated, report.layers[1].error_after < report.layers[1].error_before
        (['2'], True)
    """
    if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not ridge >= 0:
        raise ConfigError(f"compensate: ridge={ridge!r} must be a number >= 0, e.g. 1e-3")
    get_inputs = inputs or default_inputs
    calib = list(limited(data, batches))
    if not calib:
        raise DataError(
            "compensate: the calibration data yielded no batch; pass a non-empty loader"
        )
    dev_p, dev_o = model_device(pruned), model_device(original)
    pairs = [(to_device(get_inputs(b), dev_p), to_device(get_inputs(b), dev_o)) for b in calib]
    originals = dict(original.named_modules())
    report = CompensationReport(samples=sum(batch_size(x) for x, _ in pairs))
    ok: dict[str, tuple[nn.Module, nn.Module]] = {}
    for name in _layer_names(pruned, layers):
        pair = _pair(pruned.get_submodule(name), originals.get(name))
        if isinstance(pair, str):
            report.skipped[name] = pair
        else:
            ok[name] = pair
    flags = [(m, m.training) for model in (pruned, original) for m in model.modules()]
    pruned.eval()
    original.eval()
    try:
        with torch.no_grad():
            left = inherit_bn_statistics(pruned, original, kept_outputs)
            report.skipped.update(
                {n: f"BatchNorm statistics left: {why}" for n, why in left.items()}
            )
            report.bn_inherited = [n for n, _ in batchnorm_layers(pruned) if n not in left]
            _compensate_layers(pruned, original, ok, pairs, ridge, kept_outputs, report)
    finally:
        for m, flag in flags:
            m.training = flag
    return report


def _compensate_layers(
    pruned: nn.Module,
    original: nn.Module,
    layers: dict[str, tuple[nn.Module, nn.Module]],
    pairs: list[tuple[Any, Any]],
    ridge: float,
    kept_outputs: Mapping[str, Sequence[int]] | None,
    report: CompensationReport,
) -> None:
    """Refit ``layers`` in forward order (kept rows are all found before any weight changes)."""
    counts = _call_order(pruned, list(layers), pairs[0][0])
    for name in layers:
        if counts.get(name, 0) != 1:
            report.skipped[name] = f"called {counts.get(name, 0)} times per forward pass"
    order = [n for n in counts if counts[n] == 1]
    kept = {n: _kept_rows(n, *layers[n], kept_outputs) for n in order}
    for n in order:
        layer, orig = layers[n]
        report.layers.append(_refit(n, layer, orig, kept[n], pruned, original, pairs, ridge))
