"""prunekit: prune neural networks by importance score, physically, and prove the result."""

import importlib
from typing import TYPE_CHECKING, Any

from . import (
    data,
    evaluation,
    export,
    models,
    recovery,
    schedule,
    search,
    sparsity,
    testing,
)
from . import surgery as _surgery  # noqa: F401  (registers the built-in layer handlers)
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

if TYPE_CHECKING:
    from . import report

__version__ = "0.1.0"

_LAZY = {"report"}  # imports matplotlib (~0.4 s): loaded on first use, not by `import prunekit`


def __getattr__(name: str) -> Any:
    """``prunekit.report`` is imported on first access (PEP 562)."""
    if name in _LAZY:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'prunekit' has no attribute {name!r}")


__all__ = [
    "ConfigError",
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
    "analyze",
    "data",
    "evaluation",
    "export",
    "load",
    "models",
    "prune",
    "recovery",
    "report",
    "save",
    "schedule",
    "search",
    "sparsity",
    "testing",
]
