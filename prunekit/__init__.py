"""prunekit: prune neural networks by importance score, physically, and prove the result.

Every public name is imported on first use (PEP 562), so ``import prunekit`` and the command
line start without importing torch; ``prunekit.prune`` imports what it needs when it is
first touched.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import (
        allocation,
        conformance,
        data,
        distributed,
        evaluation,
        export,
        graph,
        importance,
        llm,
        models,
        plan,
        recovery,
        report,
        schedule,
        search,
        sparsity,
        surgery,
        testing,
    )
    from .analysis import analyze
    from .api import prune
    from .errors import (
        ConfigError,
        EquivalenceError,
        NothingToPruneError,
        PlanError,
        PrunekitError,
        TraceError,
        UnsupportedOpWarning,
    )
    from .export import load, save
    from .graph import DependencyGraph, Group, Member
    from .plan import PruningPlan
    from .pruner import Pruner, PruneResult, PruneSummary
    from .schedule import ScheduleResult
    from .sparsity import WeightPruneResult
    from .spec import CutSpec

__version__ = "0.1.0"

_EXTENSION_POINTS = {"importance", "graph", "surgery", "allocation", "plan", "conformance"}
"""Where users extend prunekit: criteria (``importance``), graph leaf/op rules (``graph``),
layer handlers (``surgery``), allocators (``allocation``), plans (``plan``) and the battery
that checks a new criterion or handler (``conformance``); see ARCHITECTURE.md."""

_SUBMODULES = {
    "data", "distributed", "evaluation", "export", "llm", "models", "recovery", "report",
    "schedule", "search", "sparsity", "testing", *_EXTENSION_POINTS,
}  # fmt: skip
"""Subpackages reachable as attributes (``prunekit.evaluation``)."""

_NAMES = {
    "analyze": "analysis",
    "prune": "api",
    "ConfigError": "errors",
    "EquivalenceError": "errors",
    "NothingToPruneError": "errors",
    "PlanError": "errors",
    "PrunekitError": "errors",
    "TraceError": "errors",
    "UnsupportedOpWarning": "errors",
    "load": "export",
    "save": "export",
    "DependencyGraph": "graph",
    "Group": "graph",
    "Member": "graph",
    "PruningPlan": "plan",
    "Pruner": "pruner",
    "PruneResult": "pruner",
    "PruneSummary": "pruner",
    "ScheduleResult": "schedule",
    "CutSpec": "spec",
    "WeightPruneResult": "sparsity",
}
"""Public name -> the module (relative to ``prunekit``) that defines it."""


def __getattr__(name: str) -> Any:
    """Import a public name or subpackage on first access (PEP 562)."""
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f".{name}", __name__)
    elif name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'prunekit' has no attribute {name!r}")
    if _NAMES.get(name) != "errors":
        importlib.import_module(".surgery", __name__)  # registers the built-in layer handlers
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ConfigError",
    "CutSpec",
    "DependencyGraph",
    "EquivalenceError",
    "Group",
    "Member",
    "NothingToPruneError",
    "PlanError",
    "PruneResult",
    "Pruner",
    "PruneSummary",
    "PrunekitError",
    "PruningPlan",
    "ScheduleResult",
    "TraceError",
    "UnsupportedOpWarning",
    "WeightPruneResult",
    "__version__",
    "allocation",
    "analyze",
    "conformance",
    "data",
    "distributed",
    "evaluation",
    "export",
    "graph",
    "importance",
    "llm",
    "load",
    "models",
    "plan",
    "prune",
    "recovery",
    "report",
    "save",
    "schedule",
    "search",
    "sparsity",
    "surgery",
    "testing",
]
