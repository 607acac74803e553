"""Budget- and accuracy-constrained search over pruning ratios and strategies."""

from .result import Baseline, CrossValidation, SearchPoint, SearchResult
from .search import InfeasibleSearchError, search
from .spec import Budget, Strategy

__all__ = [
    "Baseline",
    "Budget",
    "CrossValidation",
    "InfeasibleSearchError",
    "SearchPoint",
    "SearchResult",
    "Strategy",
    "search",
]
