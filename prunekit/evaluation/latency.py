"""Inference latency and throughput, measured the way a deployment sees them.

Protocol: the model runs in eval mode under ``torch.inference_mode`` with a fixed number of
intra-op threads (``torch.set_num_threads``, restored afterwards). ``warmup`` untimed runs come
first (allocator, caches, lazy initialisation, CPU frequency), then ``runs`` forward passes are
each timed with ``time.perf_counter``; on CUDA the device is synchronised before and after each
run so the time covers the kernels, not just their launch. The summary is the median (robust
to scheduler hiccups), its spread as the quartiles ``q1``/``q3`` (the IQR), the 90th
percentile (linear interpolation, ``numpy.percentile``), mean, sample standard deviation,
min and max, in milliseconds, and the throughput
``batch_size / median`` in samples per second.

Measure batch 1 (interactive latency) and a larger batch such as 64 (throughput). Numbers
depend on the machine and its load: compare models only within one run on one machine, and
keep timing out of pass/fail tests.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.evaluation._runtime import (
    batch_size_of,
    eval_mode,
    fixed_threads,
    model_device,
    resize_batch,
    to_device,
)
from prunekit.evaluation.deploy import inference_form, to_channels_last
from prunekit.graph import call_model

__all__ = ["LatencyReport", "SpeedupReport", "measure_latency", "measure_speedup"]


@dataclass(frozen=True)
class LatencyReport:
    """Timing of repeated forward passes on one batch size.

    Attributes:
        batch_size: Samples per forward pass.
        runs: Timed runs; ``warmup``: untimed runs before them.
        threads: ``torch.get_num_threads()`` during the measurement.
        device: Where the model ran (``"cpu"``, ``"cuda:0"`` ...).
        median_ms, p90_ms, mean_ms, std_ms, min_ms, max_ms: Per-run time statistics.
        throughput: Samples per second at the median time.
        form: What was timed: ``"as-is"`` or the :func:`inference_form` transforms
            (``deploy=True``), e.g. ``"bn-folded+channels-last"``.
        q1_ms, q3_ms: The 25th and 75th percentiles of the per-run times (``nan`` when not
            measured); ``iqr_ms`` is their difference.

    Example:
        >>> r = LatencyReport(64, 10, 2, 1, "cpu", 4.0, 5.0, 4.2, 0.3, 3.9, 6.0, 16000.0)
        >>> r.to_dict()["throughput"]
        16000.0
    """

    batch_size: int
    runs: int
    warmup: int
    threads: int
    device: str
    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    throughput: float
    form: str = "as-is"
    q1_ms: float = float("nan")
    q3_ms: float = float("nan")

    @property
    def iqr_ms(self) -> float:
        """The interquartile range of the per-run times (``q3_ms - q1_ms``)."""
        return self.q3_ms - self.q1_ms

    def summary(self) -> str:
        """``"1.23 ms (IQR 1.20-1.31, 30 runs, 2 threads)"``: the median with its spread.

        Example:
            >>> LatencyReport(1, 30, 5, 2, "cpu", 1.234, 1.5, 1.25, 0.1, 1.1, 1.9, 810.0,
            ...               q1_ms=1.2, q3_ms=1.31).summary()
            '1.234 ms (IQR 1.200-1.310 over 30 runs, 2 threads, cpu)'
        """
        return (
            f"{self.median_ms:.3f} ms (IQR {self.q1_ms:.3f}-{self.q3_ms:.3f} over {self.runs} "
            f"runs, {self.threads} threads, {self.device})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)


def measure_latency(
    model: nn.Module,
    example_inputs: Any,
    *,
    batch_size: int | None = None,
    warmup: int = 10,
    runs: int = 50,
    threads: int | None = None,
    deploy: bool = False,
) -> LatencyReport:
    """Time ``runs`` forward passes of ``model`` after ``warmup`` untimed ones.

    Args:
        model: The model; it stays on its device, inputs are moved there.
        example_inputs: A tensor, tuple/list of positional inputs or dict of keyword inputs.
        batch_size: Resize the inputs' batch to this many rows (their first rows, cycled);
            ``None`` uses them as given.
        warmup: Untimed runs first (>= 0).
        runs: Timed runs (>= 1).
        threads: Intra-op CPU threads during the measurement (``None``: the current count).
        deploy: Time the model's inference form instead (a copy with BatchNorm folded into
            the preceding conv/linear and channels-last images, see
            :func:`~prunekit.evaluation.deploy.inference_form`): what a deployment runs.

    Returns:
        A :class:`LatencyReport`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> r = measure_latency(nn.Linear(8, 2), torch.zeros(1, 8), batch_size=4, warmup=1, runs=3)
        >>> r.batch_size, r.runs, r.median_ms > 0, r.throughput > 0
        (4, 3, True, True)
    """
    _check_counts(warmup=warmup, runs=runs)
    model, inputs, form = _prepared(model, example_inputs, batch_size, deploy)
    with fixed_threads(threads) as used:
        (times,) = _interleaved([(model, inputs, form)], warmup, [runs])
    return _report(times, batch_size_of(inputs), warmup, used, model_device(model), form)


def _prepared(
    model: nn.Module, example_inputs: Any, batch_size: int | None, deploy: bool
) -> tuple[nn.Module, Any, str]:
    """The model (or its inference form) and the inputs resized and moved to its device."""
    inputs = example_inputs if batch_size is None else resize_batch(example_inputs, batch_size)
    inputs = to_device(inputs, model_device(model))
    form = "as-is"
    if deploy:
        model, form = inference_form(model, inputs)
        inputs = to_channels_last(inputs) if "channels-last" in form else inputs
    return model, inputs, form


def _report(
    seconds: list[float], samples: int, warmup: int, threads: int, device: torch.device, form: str
) -> LatencyReport:
    times = np.array(seconds) * 1e3
    runs = len(times)
    median = float(np.median(times))
    return LatencyReport(
        batch_size=samples,
        runs=runs,
        warmup=warmup,
        threads=threads,
        device=str(device),
        median_ms=median,
        p90_ms=float(np.percentile(times, 90)),
        mean_ms=float(times.mean()),
        std_ms=float(times.std(ddof=1)) if runs > 1 else 0.0,
        min_ms=float(times.min()),
        max_ms=float(times.max()),
        throughput=samples / max(median / 1e3, 1e-12),
        form=form,
        q1_ms=float(np.percentile(times, 25)),
        q3_ms=float(np.percentile(times, 75)),
    )


@dataclass(frozen=True)
class SpeedupReport:
    """Latency of a reference and a candidate model timed in interleaved rounds.

    Attributes:
        reference, candidate: The two :class:`LatencyReport` (same batch, threads, form).
        speedup: ``reference.median_ms / candidate.median_ms`` (> 1: the candidate is faster).
        rounds: How many alternating blocks each model's runs were split into.

    Example:
        >>> r = LatencyReport(64, 10, 2, 1, "cpu", 4.0, 5.0, 4.2, 0.3, 3.9, 6.0, 16000.0)
        >>> SpeedupReport(r, r, 1.0, 4).to_dict()["speedup"]
        1.0
    """

    reference: LatencyReport
    candidate: LatencyReport
    speedup: float
    rounds: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_speedup(
    reference: nn.Module,
    candidate: nn.Module,
    example_inputs: Any,
    *,
    batch_size: int | None = None,
    warmup: int = 10,
    runs: int = 50,
    threads: int | None = None,
    deploy: bool = False,
    rounds: int = 5,
) -> SpeedupReport:
    """Time two models in alternating blocks so that machine load hits both alike.

    On a shared machine, timing the unpruned model first and the pruned one minutes later
    compares two different loads. Here each model's ``runs`` are split into ``rounds``
    blocks, run in the order A B, B A, A B ... after both have warmed up, and the speed-up is
    the ratio of the medians of the same window.

    Args:
        reference: The model to compare against (e.g. the unpruned one).
        candidate: The model whose speed-up is reported (e.g. the pruned one).
        example_inputs: As in :func:`measure_latency`; both models get the same inputs.
        batch_size, warmup, threads, deploy: As in :func:`measure_latency`.
        runs: Timed runs per model (>= ``rounds``).
        rounds: Alternating blocks (>= 1).

    Returns:
        A :class:`SpeedupReport`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> big, small = nn.Linear(256, 256), nn.Linear(256, 8)
        >>> r = measure_speedup(big, small, torch.zeros(1, 256), batch_size=8, runs=6, rounds=2)
        >>> r.reference.runs, r.candidate.runs, r.speedup > 0
        (6, 6, True)
    """
    _check_counts(warmup=warmup, runs=runs)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= runs:
        raise ConfigError(f"rounds={rounds!r} must be an int in [1, runs={runs}] (e.g. 5)")
    prepared = [_prepared(m, example_inputs, batch_size, deploy) for m in (reference, candidate)]
    blocks = [runs // rounds + (i < runs % rounds) for i in range(rounds)]
    with fixed_threads(threads) as used:
        times = _interleaved(prepared, warmup, blocks)
    ref, cand = (
        _report(times[k], batch_size_of(inp), warmup, used, model_device(m), form)
        for k, (m, inp, form) in enumerate(prepared)
    )
    return SpeedupReport(ref, cand, ref.median_ms / max(cand.median_ms, 1e-12), rounds)


def _interleaved(
    prepared: list[tuple[nn.Module, Any, str]], warmup: int, blocks: list[int]
) -> list[list[float]]:
    """Per-run seconds of each prepared model after ``warmup`` untimed runs of each, timed
    in blocks of ``blocks[i]`` runs, the model order reversed every other block (A B, B A ...)."""
    times: list[list[float]] = [[] for _ in prepared]
    order = list(range(len(prepared)))
    with ExitStack() as stack:
        for model, _, _ in prepared:
            stack.enter_context(eval_mode(model))
        stack.enter_context(torch.inference_mode())
        for model, inputs, _ in prepared:
            for _ in range(warmup):
                call_model(model, inputs)
        for i, n in enumerate(blocks):
            for which in order if i % 2 == 0 else order[::-1]:
                model, inputs, _ = prepared[which]
                device = model_device(model)
                times[which] += [_timed(model, inputs, device) for _ in range(n)]
    return times


def _timed(model: nn.Module, inputs: Any, device: torch.device) -> float:
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    call_model(model, inputs)
    if cuda:
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _check_counts(*, warmup: int, runs: int) -> None:
    for name, value, low in (("warmup", warmup, 0), ("runs", runs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r} must be an int >= {low} (e.g. warmup=10, runs=50)")
