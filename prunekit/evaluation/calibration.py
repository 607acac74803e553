"""Deprecated: renamed :mod:`prunekit.evaluation.confidence` (confidence calibration, ECE).

"calibration" alone now means the criteria's calibration data; this alias re-exports the
confidence-calibration names for one release.
"""

import warnings

from prunekit.evaluation.confidence import *  # noqa: F403  (the deprecated alias)
from prunekit.evaluation.confidence import __all__ as __all__

warnings.warn(
    "prunekit.evaluation.calibration was renamed prunekit.evaluation.confidence (confidence "
    "calibration: ECE, reliability bins); import from there",
    DeprecationWarning,
    stacklevel=2,
)
