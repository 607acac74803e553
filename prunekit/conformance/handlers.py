"""``check_handler``: the contract every layer handler keeps, on example models.

A handler is checked on the modules it handles in an example model: its answers
(``output_dims``, ``input_dim``, ``role``, ``running_stats``, ``refit_geometry``,
``folds_at_inference``, ``finalize``) are consistent with the module's tensors; ``update``
on an uncut module changes nothing; after cutting one unit of every group that touches
the module, the model runs with unchanged output shapes, re-traces, ``update`` rebuilds
the attributes from the tensors alone, and exact groups pass zero -> cut -> compare.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .._modelio import run_outputs
from ..analysis import analyze
from ..equivalence import compare_outputs, zero_cut_compare
from ..graph.dependency import DependencyGraph, Group, positions_to_remove
from ..surgery import ROLES, Handler, RefitGeometry, RunningStats, cut, get_handler
from .nets import ReferenceNet
from .report import ConformanceError, ConformanceReport

__all__ = ["check_handler"]

Example = ReferenceNet | Callable[[], ReferenceNet]


def check_handler(handler: Handler | type[Handler], example: Example) -> ConformanceReport:
    """Check ``handler`` (registered; an instance, or its class) on the modules it handles in
    ``example`` (a :class:`~prunekit.conformance.nets.ReferenceNet` or a factory of one).

    Raises:
        ConformanceError: naming the module, the check and the fix.

    Example:
        >>> import torch
        >>> from prunekit.conformance import handler_examples
        >>> from prunekit.surgery import get_handler
        >>> h = get_handler(torch.nn.Linear(2, 2))
        >>> report = check_handler(h, handler_examples(torch.nn.Linear)[0])
        >>> "zero -> cut -> compare" in report.passed
        True
    """
    net = example() if callable(example) else example
    handled = _handled(handler, net.model)
    report = ConformanceReport(f"{_name(handler)} on {net.name!r}")
    if not handled:
        raise ConformanceError(
            f"{report.subject}: no module of the example is handled by it; register it with "
            "prunekit.surgery.register_handler(ModuleType, handler) first"
        )
    for name in handled:
        module = dict(net.model.named_modules())[name]
        _check_answers(report, name, module)
        _check_update_noop(report, name, module, net)
    graph = analyze(net.model, net.example_inputs)
    touching = [g for g in graph.groups if g.num_units > 1 and _touches(g, handled)]
    if not touching:
        report.skip("cut keeps attributes coherent", "no cuttable group touches its modules")
        return report
    _check_cut(report, net, graph, touching, handled)
    exact = [g for g in touching if g.exact]
    if exact:
        model = copy.deepcopy(net.model)
        removals, removed = _one_unit_each(analyze(model, net.example_inputs), exact)
        zero_cut_compare(model, net.example_inputs, analyze(model, net.example_inputs),
                         removals, removed)  # fmt: skip
        report.ok("zero -> cut -> compare")
    else:
        report.skip("zero -> cut -> compare", "every group touching it is non-exact")
    return report


def _name(handler: Handler | type[Handler]) -> str:
    return handler.__name__ if isinstance(handler, type) else type(handler).__name__


def _handled(handler: Handler | type[Handler], model: nn.Module) -> list[str]:
    def matches(h: Handler) -> bool:
        return type(h) is handler if isinstance(handler, type) else h is handler

    return [n for n, m in model.named_modules() if n and matches(get_handler(m))]


def _touches(group: Group, modules: list[str]) -> bool:
    return any(
        m.module == n or m.module.startswith(f"{n}.") for m in group.members for n in modules
    )


def _fail(report: ConformanceReport, where: str, check: str, why: str) -> None:
    raise ConformanceError(f"{report.subject}: module {where!r}: check '{check}' failed: {why}")


def _own(module: nn.Module) -> dict[str, torch.Tensor]:
    own: dict[str, torch.Tensor] = {k: v for k, v in module._parameters.items() if v is not None}
    own.update({k: v for k, v in module._buffers.items() if v is not None})
    return own


def _check_answers(report: ConformanceReport, where: str, module: nn.Module) -> None:
    """The handler's answers are consistent with ``module``'s own tensors."""
    h, own, check = get_handler(module), _own(module), "answers match the tensors"
    for tensor, dim in h.output_dims(module).items():
        if tensor not in module._parameters and tensor not in module._buffers:
            _fail(report, where, check, f"output_dims names {tensor!r}, not a tensor of it")
        t = own.get(tensor)
        if t is not None and not -t.dim() <= dim < max(t.dim(), 1):
            _fail(
                report, where, check, f"output_dims[{tensor!r}]={dim} is outside {tuple(t.shape)}"
            )
    for tensor, t in own.items():
        role = h.role(module, tensor)
        is_buffer = tensor in module._buffers
        if role not in ROLES or (role in ("statistic", "buffer")) != is_buffer:
            _fail(report, where, check, f"role({tensor!r})={role!r}: use one of {ROLES}, "
                  "'statistic'/'buffer' exactly for buffers")  # fmt: skip
        d = h.input_dim(module, tensor, t.dim())
        out = h.output_dims(module).get(tensor)
        if d is not None and (not 0 <= d < t.dim() or d == out):
            _fail(report, where, check, f"input_dim({tensor!r})={d} for shape {tuple(t.shape)} "
                  f"(output dim {out})")  # fmt: skip
    _check_kinds(report, where, h, module)
    report.ok(check)


def _check_kinds(report: ConformanceReport, where: str, h: Handler, module: nn.Module) -> None:
    check = "answers match the tensors"
    stats = h.running_stats(module)
    if stats is not None and not isinstance(stats, RunningStats):
        _fail(report, where, check, f"running_stats returned {type(stats).__name__}")
    geometry = h.refit_geometry(module)
    if geometry is not None and not isinstance(geometry, (str, RefitGeometry)):
        _fail(report, where, check, f"refit_geometry returned {type(geometry).__name__}")
    if not isinstance(h.folds_at_inference(module), bool):
        _fail(report, where, check, "folds_at_inference must return a bool")
    if not isinstance(h.finalize(copy.deepcopy(module)), nn.Module):
        _fail(report, where, check, "finalize must return an nn.Module")


def _attrs(module: nn.Module) -> dict[str, Any]:
    """The plain attributes (sizes, flags) that must follow the tensors."""
    simple = (int, float, bool, str, tuple, type(None))
    return {
        k: v for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, simple)
    }


def _check_update_noop(
    report: ConformanceReport, where: str, module: nn.Module, net: ReferenceNet
) -> None:
    """``update`` on a module whose tensors were not cut changes no attribute nor output."""
    before, want = _attrs(module), [t.clone() for t in run_outputs(net.model, net.example_inputs)]
    model = copy.deepcopy(net.model)
    twin = dict(model.named_modules())[where]
    get_handler(twin).update(twin)
    if _attrs(twin) != before:
        changed = {k: (before.get(k), v) for k, v in _attrs(twin).items() if before.get(k) != v}
        _fail(report, where, "update on an uncut module is a no-op", f"it changed {changed}: "
              "update must read the sizes from the tensors")  # fmt: skip
    compare_outputs(want, run_outputs(model, net.example_inputs))
    report.ok("update on an uncut module is a no-op")


def _one_unit_each(
    graph: DependencyGraph, groups: list[Group]
) -> tuple[dict[tuple[str, int], np.ndarray], dict[int, set[int]]]:
    keys = {g.key for g in groups}
    removals: dict[tuple[str, int], np.ndarray] = {}
    removed: dict[int, set[int]] = {}
    for g in graph.groups:
        if g.key in keys:
            unit = g.num_units // 2
            positions_to_remove(g, [unit], removals)
            removed[g.id] = {unit}
    return removals, removed


def _check_cut(
    report: ConformanceReport, net: ReferenceNet, graph: DependencyGraph,
    touching: list[Group], handled: list[str],
) -> None:  # fmt: skip
    """Cut one unit of every touching group; the model must stay coherent."""
    check = "cut keeps attributes coherent"
    shapes = [t.shape for t in run_outputs(net.model, net.example_inputs)]
    model = copy.deepcopy(net.model)
    graph = analyze(model, net.example_inputs)
    before = {n: _attrs(dict(model.named_modules())[n]) for n in handled}
    classes = {n: type(dict(model.named_modules())[n]) for n in handled}
    cut(model, *_cut_args(graph, touching))
    try:
        got = [t.shape for t in run_outputs(model, net.example_inputs)]
        analyze(model, net.example_inputs)
    except Exception as err:  # the point of the check: any crash is the finding
        _fail(report, ",".join(handled), check, f"the cut model no longer runs or traces: {err}")
    if got != shapes:
        _fail(report, ",".join(handled), check, f"output shapes {got} != {shapes}")
    for name in handled:
        module = dict(model.named_modules())[name]
        _check_answers(report, name, module)
        stale = copy.deepcopy(module)
        for key, value in before[name].items():
            if key in vars(stale):
                setattr(stale, key, value)
        get_handler(stale).update(stale)
        if _attrs(stale) != _attrs(module):
            _fail(report, name, check, f"update from the old attributes gave {_attrs(stale)}, "
                  f"the cut module has {_attrs(module)}: derive them from the tensors")  # fmt: skip
        if type(module) is not classes[name]:
            report.skip("attributes rebuild the module", f"{name}: class swapped to "
                        f"{type(module).__name__}, which the old class cannot describe")  # fmt: skip
        else:
            _check_rebuild(report, name, module)
    report.ok(check)


def _check_rebuild(report: ConformanceReport, where: str, module: nn.Module) -> None:
    """``type(module)(**attributes)`` has the cut module's tensor shapes (the attributes
    describe the tensors, so a saved config rebuilds the pruned model)."""
    check = "attributes rebuild the module"
    kwargs: dict[str, Any] = {}
    params = list(inspect.signature(type(module).__init__).parameters.values())[1:]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        report.skip(check, f"{where}: {type(module).__name__}(*args) names no arguments")
        return
    for p in params:
        if p.kind == p.VAR_KEYWORD or p.name in ("device", "dtype"):
            continue
        if p.name in _attrs(module):
            kwargs[p.name] = getattr(module, p.name)
        elif p.name in module._parameters:
            kwargs[p.name] = module._parameters[p.name] is not None
        elif p.default is p.empty:
            report.skip(check, f"{where}: constructor argument {p.name!r} is no attribute")
            return
    try:
        rebuilt = type(module)(**kwargs)
    except Exception as err:  # a constructor that rejects the attributes is the finding
        _fail(report, where, check, f"{type(module).__name__}(**{kwargs}) raised {err}")
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if got != want:
        bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        _fail(report, where, check, f"the attributes {kwargs} rebuild shapes (rebuilt, cut) "
              f"{bad}: update must set them from the cut tensors")  # fmt: skip
    report.ok(check)


def _cut_args(
    graph: DependencyGraph, groups: list[Group]
) -> tuple[dict[tuple[str, int], np.ndarray], DependencyGraph, dict[int, set[int]]]:
    removals, removed = _one_unit_each(graph, groups)
    return removals, graph, removed
