"""prunekit: prune neural networks by importance score, physically, and prove the result."""

from . import (
    data,
    evaluation,
    export,
    models,
    recovery,
    report,
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

__version__ = "0.1.0"

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
