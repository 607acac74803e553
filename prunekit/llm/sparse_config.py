"""Argument checking of :func:`prunekit.llm.sparsify`: methods, patterns, allocations.

Example:
    >>> cfg = parse_config("wanda", None, "2:4", "uniform", owl_lambda=0.08,
    ...     owl_threshold=5.0, damp=0.01, blocksize=128, sequential=True)
    >>> cfg.nm, cfg.sparsity, cfg.pattern
    ((2, 4), 0.5, '2:4')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..sparsity.masks import parse_pattern

__all__ = ["ALLOCATIONS", "METHODS", "SparseConfig", "parse_config"]

METHODS = ("magnitude", "wanda", "sparsegpt")
ALLOCATIONS = ("uniform", "owl")


@dataclass(frozen=True)
class SparseConfig:
    """The validated arguments of :func:`prunekit.llm.sparsify`."""

    method: str
    sparsity: float
    nm: tuple[int, int] | None
    pattern: str
    allocation: str
    owl_lambda: float
    owl_threshold: float
    damp: float
    blocksize: int
    sequential: bool


def _check_number(name: str, value: Any, low: float, *, strict: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or (value <= low if strict else value < low):
        bound = ">" if strict else ">="
        raise ConfigError(f"sparsify: {name}={value!r} must be a number {bound} {low}")
    return float(value)


def _parse_pattern(pattern: Any) -> tuple[int, int] | None:
    if pattern == "unstructured":
        return None
    try:
        return parse_pattern(pattern)
    except ConfigError as exc:
        raise ConfigError(
            f"sparsify: pattern={pattern!r} is not valid; use 'unstructured' or an 'N:M' "
            f"string with 0 < N < M such as '2:4' or '4:8' ({exc})"
        ) from None


def parse_config(
    method: Any, sparsity: Any, pattern: Any, allocation: Any, **rest: Any
) -> SparseConfig:
    """Check :func:`prunekit.llm.sparsify`'s arguments (``rest``: ``owl_lambda``,
    ``owl_threshold``, ``damp``, ``blocksize``, ``sequential``); ConfigError names the bad
    value and the valid ones."""
    if method not in METHODS:
        raise ConfigError(f"sparsify: method={method!r} is unknown; use one of {list(METHODS)}")
    if allocation not in ALLOCATIONS:
        raise ConfigError(
            f"sparsify: allocation={allocation!r} is unknown; use one of {list(ALLOCATIONS)}"
        )
    nm = _parse_pattern(pattern)
    if sparsity is not None:
        sparsity = _check_number("sparsity", sparsity, 0.0)
    if nm is not None and allocation == "owl":
        raise ConfigError(
            f"sparsify: allocation='owl' varies the sparsity per block, but pattern={pattern!r} "
            f"fixes it at 1 - N/M; use pattern='unstructured' with OWL, or allocation='uniform'"
        )
    if nm is not None:
        fixed = 1.0 - nm[0] / nm[1]
        if sparsity is not None and abs(sparsity - fixed) > 1e-9:
            raise ConfigError(
                f"sparsify: sparsity={sparsity!r} contradicts pattern={pattern!r}, whose "
                f"sparsity is {fixed:g}; leave sparsity=None for an N:M pattern"
            )
        sparsity = fixed
    value = 0.5 if sparsity is None else sparsity
    if value >= 1.0:
        raise ConfigError(f"sparsify: sparsity={sparsity!r} must be in [0, 1)")
    blocksize = rest["blocksize"]
    if not isinstance(blocksize, int) or isinstance(blocksize, bool) or blocksize < 1:
        raise ConfigError(f"sparsify: blocksize={blocksize!r} must be a positive integer")
    return SparseConfig(
        method=method,
        sparsity=value,
        nm=nm,
        pattern="unstructured" if nm is None else f"{nm[0]}:{nm[1]}",
        allocation=allocation,
        owl_lambda=_check_number("owl_lambda", rest["owl_lambda"], 0.0),
        owl_threshold=_check_number("owl_threshold", rest["owl_threshold"], 0.0, strict=True),
        damp=_check_number("damp", rest["damp"], 0.0),
        blocksize=blocksize,
        sequential=bool(rest["sequential"]),
    )
