"""``check_criterion``: the contract every importance criterion must keep.

Run over every registered criterion by ``tests/test_conformance.py``, so registering a new
one with :func:`~prunekit.importance.register_importance` adds it to the test suite.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..analysis import analyze
from ..errors import ConfigError
from ..graph.dependency import DependencyGraph, positions_to_remove
from ..importance import Importance, available_importances, get_importance
from ..surgery.apply import zero_slices
from .nets import ReferenceNet, criterion_nets, loss_fn
from .report import ConformanceError, ConformanceReport

__all__ = ["check_criterion"]

Maker = Callable[[], Importance]


def check_criterion(
    criterion: str | Importance | type, *, nets: list[ReferenceNet] | None = None, seed: int = 0
) -> ConformanceReport:
    """Check that ``criterion`` keeps the criterion contract on tiny reference nets.

    ``criterion`` is a registered name, a criterion class, or an instance (copied for every
    use). The checks: a name is registered, case-insensitively unique, and its factory
    returns a fresh object each call; the object follows the
    :class:`~prunekit.importance.Importance` protocol with boolean traits (see
    :mod:`prunekit.importance.base`); on every net (MLP, conv + BN, residual, attention by
    default) it scores every group with a finite 1-D float tensor of the group's unit count,
    leaves the model's tensors, modes and gradients as they were, and gives the same scores
    on a second run from the same seed. A data-driven criterion (``requires_data``) is
    given the net's calibration batches (and ``loss_fn``) as dataclass fields ``data`` and
    ``loss_fn``, and must raise :class:`~prunekit.errors.ConfigError` naming ``data`` when
    prepared without them. A magnitude-like one (``zero_unit_lowest``) must score a unit
    whose member slices are all zero lowest (ties allowed) in every exact group.

    Raises:
        ConformanceError: naming the check, the net and the group that failed.

    Example:
        >>> report = check_criterion("l1")
        >>> "zero unit scores lowest" in report.passed, report.skipped
        (True, {})
    """
    label, make = _resolve(criterion)
    report = ConformanceReport(label)
    probe = make()
    _check_protocol(label, probe, report)
    for net in nets if nets is not None else criterion_nets():
        graph = analyze(net.model, net.example_inputs)
        if getattr(probe, "requires_data", False):
            _check_needs_data(label, make, net, graph, report)
        first = _scores_untouched(label, make, net, graph, seed, report)
        second = _scores(make, net, net.model, graph, seed)
        for gid, s in first.items():
            if not torch.equal(s, second[gid]):
                _fail(label, "deterministic given a seed", net, f"group {gid} scored differently "
                      "on a second run: draw randomness from a generator seeded by the "
                      "criterion's own seed")  # fmt: skip
        report.ok("deterministic given a seed")
        if getattr(probe, "zero_unit_lowest", False):
            _check_zero_lowest(label, make, net, seed, report)
        else:
            report.skip("zero unit scores lowest", "not declared (zero_unit_lowest = False)")
    return report


def _resolve(criterion: str | Importance | type) -> tuple[str, Maker]:
    if isinstance(criterion, str):
        name = criterion.lower()
        if name not in available_importances():
            raise ConformanceError(
                f"criterion {criterion!r} is not registered (registered: "
                f"{', '.join(available_importances())}); register it with "
                "prunekit.importance.register_importance(name, factory)"
            )
        if get_importance(name) is get_importance(name):
            raise ConformanceError(
                f"criterion {name!r}: its factory returns one shared object; register a "
                "factory (the class, or a lambda) so every prune gets fresh state"
            )
        return name, lambda: get_importance(name)
    if isinstance(criterion, type):
        return criterion.__name__, lambda: get_importance(criterion())
    resolved = get_importance(criterion)
    return type(resolved).__name__, lambda: copy.deepcopy(resolved)


def _check_protocol(label: str, crit: Importance, report: ConformanceReport) -> None:
    if not isinstance(crit, Importance):
        raise ConformanceError(
            f"criterion {label}: {type(crit).__name__} lacks prepare(model, graph) or "
            "__call__(group, tensors); subclass prunekit.importance.Criterion"
        )
    for trait in ("requires_data", "requires_loss", "zero_unit_lowest"):
        value = getattr(crit, trait, False)
        if not isinstance(value, bool):
            raise ConformanceError(
                f"criterion {label}: trait {trait}={value!r} must be a bool (a class attribute)"
            )
    report.ok("follows the Importance protocol")


def _with_data(label: str, crit: Importance, net: ReferenceNet | None) -> Importance:
    """``crit`` given ``net``'s calibration batches (``None``: stripped of any data)."""
    if not getattr(crit, "requires_data", False):
        return crit
    names: set[str] = set()
    if dataclasses.is_dataclass(crit):
        names = {f.name for f in dataclasses.fields(crit)}
    if not {"data", "loss_fn"} <= names:
        raise ConformanceError(
            f"criterion {label} declares requires_data but takes no data= and loss_fn= "
            "dataclass fields; derive it from prunekit.importance.DataCriterion"
        )
    changes: dict[str, Any] = {"data": None, "loss_fn": None}
    if net is not None:
        changes = {"data": net.batches, "loss_fn": loss_fn}
    for extra in ("calibration", "stats", "batches"):
        if extra in names:
            changes[extra] = None
    out: Importance = dataclasses.replace(crit, **changes)  # type: ignore[type-var]
    return out


def _check_needs_data(
    label: str, make: Maker, net: ReferenceNet, graph: DependencyGraph, report: ConformanceReport
) -> None:
    bare = _with_data(label, make(), None)
    try:
        bare.prepare(copy.deepcopy(net.model), graph)
    except ConfigError as err:
        if "data" not in str(err):
            _fail(label, "clear error without data", net, f"the error {err!r} does not say "
                  "how to pass the calibration data (data=...)")  # fmt: skip
    else:
        _fail(label, "clear error without data", net, "prepare() without calibration data "
              "raised nothing: raise ConfigError naming data=")  # fmt: skip
    report.ok("clear error without data")


def _scores(
    make: Maker, net: ReferenceNet, model: nn.Module, graph: DependencyGraph, seed: int
) -> dict[int, torch.Tensor]:
    torch.manual_seed(seed)
    crit = _with_data("", make(), net)
    crit.prepare(model, graph)
    return {g.id: crit(g, graph.tensors) for g in graph.groups}


def _state(model: nn.Module) -> dict[str, Any]:
    return {
        "tensors": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad is None for p in model.parameters()],
    }


def _same_state(a: dict[str, Any], b: dict[str, Any]) -> str:
    """What differs between two :func:`_state` snapshots (empty when nothing does)."""
    if a["tensors"].keys() != b["tensors"].keys():
        return "the set of parameters and buffers changed"
    for key, t in a["tensors"].items():
        if not torch.equal(t, b["tensors"][key]):
            return f"tensor {key!r} changed"
    for what in ("training", "requires_grad", "grads"):
        if a[what] != b[what]:
            return f"the model's {what.replace('_', ' ')} flags changed"
    return ""


def _scores_untouched(
    label: str, make: Maker, net: ReferenceNet, graph: DependencyGraph, seed: int,
    report: ConformanceReport,
) -> dict[int, torch.Tensor]:  # fmt: skip
    before = _state(net.model)
    scores = _scores(make, net, net.model, graph, seed)
    changed = _same_state(before, _state(net.model))
    if changed:
        _fail(label, "does not modify the model", net, f"{changed}; score on a copy or restore "
              "what prepare/scoring changed")  # fmt: skip
    report.ok("does not modify the model")
    for g in graph.groups:
        s = scores[g.id]
        ok = isinstance(s, torch.Tensor) and s.dim() == 1 and s.numel() == g.num_units
        if not ok or not s.is_floating_point() or not bool(torch.isfinite(s).all()):
            got = f"{type(s).__name__} {tuple(s.shape)} {s.dtype}" if ok else repr(s)[:80]
            _fail(label, "scores every group", net, f"group {g.key} ({g.num_units} units) got "
                  f"{got}; return a finite float tensor [num_units]")  # fmt: skip
    report.ok("scores every group")
    return scores


def _check_zero_lowest(
    label: str, make: Maker, net: ReferenceNet, seed: int, report: ConformanceReport
) -> None:
    """Zero unit ``num_units // 2`` of every exact group at once, re-score, compare."""
    model = copy.deepcopy(net.model)
    graph = analyze(model, net.example_inputs)
    chosen = {g.id: g.num_units // 2 for g in graph.groups if g.exact and g.num_units > 1}
    removals: dict[tuple[str, int], np.ndarray] = {}
    for g in graph.groups:
        if g.id in chosen:
            positions_to_remove(g, [chosen[g.id]], removals)
    zero_slices(model, removals, inplace=True)
    graph = analyze(model, net.example_inputs)
    scores = _scores(make, net, model, graph, seed)
    for g in graph.groups:
        if g.id not in chosen:
            continue
        s, u = scores[g.id].double(), chosen[g.id]
        others = torch.cat([s[:u], s[u + 1 :]])
        if float(s[u]) > float(others.min()) + 1e-6 * max(1.0, float(s.abs().max())):
            _fail(label, "zero unit scores lowest", net, f"in group {g.key} the all-zero unit "
                  f"{u} scored {float(s[u]):.6g} above the lowest other ({float(others.min()):.6g}); "
                  "fix the criterion or declare zero_unit_lowest = False")  # fmt: skip
    report.ok("zero unit scores lowest")


def _fail(label: str, check: str, net: ReferenceNet, why: str) -> None:
    raise ConformanceError(f"criterion {label}: check '{check}' failed on net {net.name!r}: {why}")
