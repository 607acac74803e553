"""Everything a model costs, in one record, and the before/after ratios of two such records.

A :class:`CostProfile` gathers the static costs (parameters, MACs per sample, bytes on disk,
float32 payload) and the measured ones (peak forward memory and latency, per batch size).
:func:`compare_cost` turns two profiles into reduction factors: ``before / after`` for
everything that should shrink (``4.0`` means four times smaller or faster) and
``after / before`` for throughput (``4.0`` means four times more samples per second).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from prunekit.errors import ConfigError
from prunekit.evaluation._runtime import resize_batch
from prunekit.evaluation.cost import count_macs, count_params, fp32_bytes, state_dict_bytes
from prunekit.evaluation.latency import LatencyReport, measure_latency
from prunekit.evaluation.memory import MemoryReport, measure_peak_memory

__all__ = ["CostComparison", "CostProfile", "compare_cost", "profile_cost", "ratio"]


@dataclass
class CostProfile:
    """Static and measured cost of one model.

    Attributes:
        params: Unique parameter elements.
        macs: Multiply-accumulates of one forward pass on **one** sample.
        state_dict_bytes: Size of the safetensors serialisation of the weights.
        fp32_bytes: Weight payload with floating tensors counted as float32.
        memory: Peak extra forward memory per measured batch size.
        latency: Latency/throughput per measured batch size.

    Example:
        >>> CostProfile(params=15, macs=12, state_dict_bytes=150, fp32_bytes=60).to_dict()
        {'params': 15, 'macs': 12, 'state_dict_bytes': 150, 'fp32_bytes': 60, 'memory': [], 'latency': []}
    """

    params: int
    macs: int
    state_dict_bytes: int
    fp32_bytes: int
    memory: list[MemoryReport] = field(default_factory=list)
    latency: list[LatencyReport] = field(default_factory=list)

    def latency_at(self, batch_size: int) -> LatencyReport | None:
        """The latency measured at ``batch_size`` (``None`` if not measured)."""
        return next((r for r in self.latency if r.batch_size == batch_size), None)

    def memory_at(self, batch_size: int) -> MemoryReport | None:
        """The peak memory measured at ``batch_size`` (``None`` if not measured)."""
        return next((r for r in self.memory if r.batch_size == batch_size), None)

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostProfile:
        """Rebuild from :meth:`to_dict` output."""
        fields = dict(data)
        fields["memory"] = [MemoryReport(**m) for m in data.get("memory", [])]
        fields["latency"] = [LatencyReport(**r) for r in data.get("latency", [])]
        return cls(**fields)


def profile_cost(
    model: nn.Module,
    example_inputs: Any,
    *,
    latency: bool = True,
    memory: bool = True,
    batch_sizes: Sequence[int] = (1, 64),
    threads: int | None = None,
    warmup: int = 10,
    runs: int = 50,
) -> CostProfile:
    """Measure every cost of ``model`` (see :class:`CostProfile`).

    Args:
        model: The model; it stays on its device.
        example_inputs: Inputs of any batch size; they are resized (first rows, cycled) to one
            sample for MACs and to each of ``batch_sizes`` for memory and latency.
        latency: Measure latency and throughput at each batch size.
        memory: Measure peak forward memory at each batch size.
        batch_sizes: Batch sizes for memory and latency, e.g. ``(1, 64)``.
        threads: CPU threads for latency (``None``: the current count).
        warmup: Untimed runs before timing.
        runs: Timed runs per batch size.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> p = profile_cost(nn.Linear(4, 3), torch.zeros(2, 4), latency=False, memory=False)
        >>> p.params, p.macs, p.fp32_bytes
        (15, 12, 60)
    """
    sizes = _check_batch_sizes(batch_sizes)
    one = resize_batch(example_inputs, 1)
    profile = CostProfile(
        params=count_params(model),
        macs=count_macs(model, one),
        state_dict_bytes=state_dict_bytes(model),
        fp32_bytes=fp32_bytes(model),
    )
    for size in sizes if memory else ():
        profile.memory.append(measure_peak_memory(model, example_inputs, batch_size=size))
    for size in sizes if latency else ():
        profile.latency.append(
            measure_latency(
                model, example_inputs, batch_size=size, warmup=warmup, runs=runs, threads=threads
            )
        )
    return profile


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing or the denominator is 0.

    Example:
        >>> ratio(8, 2), ratio(1, 0), ratio(None, 3)
        (4.0, None, None)
    """
    if numerator is None or denominator is None or denominator == 0:
        return None
    return float(numerator) / float(denominator)


@dataclass
class CostComparison:
    """Reduction factors from ``before`` to ``after`` (``> 1``: smaller, faster, more).

    Attributes:
        params, macs, state_dict_bytes, fp32_bytes: ``before / after``.
        memory: ``{batch_size: before / after}`` of peak forward memory.
        speedup: ``{batch_size: before / after}`` of median latency.
        p90_speedup: ``{batch_size: before / after}`` of p90 latency.
        throughput_gain: ``{batch_size: after / before}`` of throughput.

    Example:
        >>> before = CostProfile(params=100, macs=1000, state_dict_bytes=500, fp32_bytes=400)
        >>> after = CostProfile(params=25, macs=250, state_dict_bytes=200, fp32_bytes=100)
        >>> c = compare_cost(before, after)
        >>> c.params, c.macs, c.fp32_bytes
        (4.0, 4.0, 4.0)
    """

    params: float | None
    macs: float | None
    state_dict_bytes: float | None
    fp32_bytes: float | None
    memory: dict[int, float | None] = field(default_factory=dict)
    speedup: dict[int, float | None] = field(default_factory=dict)
    p90_speedup: dict[int, float | None] = field(default_factory=dict)
    throughput_gain: dict[int, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict`` (batch-size keys become strings)."""
        out = asdict(self)
        for key in ("memory", "speedup", "p90_speedup", "throughput_gain"):
            out[key] = {str(b): v for b, v in out[key].items()}
        return out


def compare_cost(before: CostProfile, after: CostProfile) -> CostComparison:
    """Reduction factors of ``after`` relative to ``before`` (only batch sizes both measured).

    Example:
        >>> b = CostProfile(params=10, macs=40, state_dict_bytes=100, fp32_bytes=40)
        >>> compare_cost(b, b).macs
        1.0
    """
    comparison = CostComparison(
        params=ratio(before.params, after.params),
        macs=ratio(before.macs, after.macs),
        state_dict_bytes=ratio(before.state_dict_bytes, after.state_dict_bytes),
        fp32_bytes=ratio(before.fp32_bytes, after.fp32_bytes),
    )
    for b_mem in before.memory:
        a_mem = after.memory_at(b_mem.batch_size)
        if a_mem is not None:
            comparison.memory[b_mem.batch_size] = ratio(b_mem.peak_bytes, a_mem.peak_bytes)
    for b_lat in before.latency:
        a_lat = after.latency_at(b_lat.batch_size)
        if a_lat is None:
            continue
        size = b_lat.batch_size
        comparison.speedup[size] = ratio(b_lat.median_ms, a_lat.median_ms)
        comparison.p90_speedup[size] = ratio(b_lat.p90_ms, a_lat.p90_ms)
        comparison.throughput_gain[size] = ratio(a_lat.throughput, b_lat.throughput)
    return comparison


def _check_batch_sizes(batch_sizes: Sequence[int]) -> list[int]:
    sizes = list(batch_sizes)
    if not sizes or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in sizes):
        raise ConfigError(
            f"batch_sizes={batch_sizes!r} must be a non-empty sequence of positive ints, "
            "e.g. (1, 64): batch 1 for latency, a larger batch for throughput"
        )
    return list(dict.fromkeys(sizes))
