"""Model cost: parameters, MACs and bytes on disk.

The counters live in :mod:`prunekit.cost` (below the pruner, whose budgets need them); this
module re-exports all of them so ``prunekit.evaluation.cost`` keeps working.
"""

from prunekit.cost import *  # noqa: F403  (the re-export)
from prunekit.cost import __all__ as __all__
