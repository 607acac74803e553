"""The prunekit exception hierarchy.

Every message names the offending value, where it was found, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "PrunekitError",
    "ConfigError",
    "TraceError",
    "NothingToPruneError",
    "PlanError",
    "EquivalenceError",
    "RegistryError",
    "UnsupportedOpWarning",
    "CalibrationWarning",
    "DataError",
    "NonFiniteError",
    "RecoveryError",
    "SearchError",
    "ExportError",
    "RecipeError",
]


class PrunekitError(Exception):
    """Base class of every error raised by prunekit."""


class ConfigError(PrunekitError, ValueError):
    """A user-supplied argument is invalid (bad ratio, unknown module in ``ignore`` ...)."""


class RegistryError(PrunekitError, KeyError):
    """An unknown name was looked up in a registry, or a name was registered twice."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class TraceError(PrunekitError):
    """The model could not be run or traced with the example inputs."""


class NothingToPruneError(PrunekitError):
    """The model has no prunable group (everything is frozen, ignored or an output)."""


class PlanError(PrunekitError):
    """A pruning plan does not fit the model it is applied to."""


class EquivalenceError(PrunekitError, AssertionError):
    """Pruning zeroed units changed the model's outputs: an engine bug for that group."""


class ConformanceError(PrunekitError, AssertionError):
    """A criterion or handler broke the contract :mod:`prunekit.conformance` checks; the
    message names the subject, the check, the reference net and the fix."""


class UnsupportedOpWarning(UserWarning):
    """An op the engine cannot map was met; the groups that touch it are frozen."""


class CalibrationWarning(UserWarning):
    """A data-driven criterion's calibration data is unlikely to rank units well (loss near
    zero on an overfit model's training data, too few samples); the message gives the fix."""


class DataError(PrunekitError, ValueError):
    """A dataset or DataLoader cannot be used as given (unknown name, wrong shapes, empty)."""


class NonFiniteError(DataError):
    """Weights, inputs, outputs or scores hold NaN or infinity (named in the message)."""


class RecoveryError(PrunekitError):
    """Fine-tuning, distillation or compensation cannot run as configured."""


class SearchError(PrunekitError):
    """A search cannot satisfy its constraint or resume from its checkpoint."""


class ExportError(PrunekitError):
    """Saving, loading or exporting a pruned model failed (bad file, mismatched model)."""


class RecipeError(ConfigError):
    """A YAML recipe is invalid; the message names the key, its line and the valid choices."""
