"""prunekit: prune neural networks by importance score, physically, and prove the result."""

from . import surgery as _surgery  # noqa: F401  (registers the built-in layer handlers)
from . import testing
from .errors import (
    ConfigError,
    EquivalenceError,
    NothingToPruneError,
    PlanError,
    PrunekitError,
    TraceError,
    UnsupportedOpWarning,
)
from .graph import DependencyGraph, Group, Member, analyze
from .plan import PruningPlan
from .pruner import PruneResult, PruneSummary, prune

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
    "PruneSummary",
    "PrunekitError",
    "PruningPlan",
    "TraceError",
    "UnsupportedOpWarning",
    "__version__",
    "analyze",
    "prune",
    "testing",
]
