"""Peak memory of one forward pass: the activations, temporaries and outputs it holds at once.

What is measured: the largest amount of tensor memory allocated during the forward pass above
what was allocated when it started. Parameters, buffers and the inputs already exist then and
are not included (their size is ``state_dict_bytes`` / the input size); this is the extra
memory inference needs, which is what structured pruning shrinks besides the weights.

How (after one untimed warm-up pass, in eval mode under ``torch.inference_mode``):

- CPU: ``torch.profiler`` with ``profile_memory=True`` records every allocation and free of
  PyTorch's CPU allocator with the running total of live bytes; the peak is the largest running
  total minus the total before the first event. ``tracemalloc`` is *not* used: it only sees
  Python's own allocator, and tensor storage bypasses it (a forward pass allocating megabytes
  of activations shows up as a few hundred bytes there).
- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus
  ``memory_allocated`` before the pass (the caching allocator's reserved pool is not counted).

Other devices report ``peak_bytes=None`` with the reason in ``method``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from prunekit.evaluation._runtime import (
    batch_size_of,
    eval_mode,
    model_device,
    native_noise_filtered,
    resize_batch,
    to_device,
)
from prunekit.graph import call_model

__all__ = ["MemoryReport", "measure_peak_memory"]

CPU_METHOD = "torch.profiler allocation events"
CUDA_METHOD = "torch.cuda.max_memory_allocated"


@dataclass(frozen=True)
class MemoryReport:
    """Peak extra memory of one forward pass on one batch size.

    Attributes:
        batch_size: Samples in the forward pass.
        peak_bytes: Peak bytes allocated above the starting level (``None``: not measurable).
        device: Where the model ran.
        method: How it was measured (or why it could not be).

    Example:
        >>> MemoryReport(1, 4096, "cpu", CPU_METHOD).to_dict()["peak_bytes"]
        4096
    """

    batch_size: int
    peak_bytes: int | None
    device: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)


def measure_peak_memory(
    model: nn.Module, example_inputs: Any, *, batch_size: int | None = None
) -> MemoryReport:
    """Measure the peak extra memory of one forward pass (see the module doc for the method).

    Args:
        model: The model; it stays on its device, inputs are moved there.
        example_inputs: A tensor, tuple/list of positional inputs or dict of keyword inputs.
        batch_size: Resize the inputs' batch to this many rows; ``None`` uses them as given.

    Returns:
        A :class:`MemoryReport`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(100, 200), nn.ReLU())
        >>> report = measure_peak_memory(model, torch.zeros(8, 100))
        >>> report.peak_bytes  # linear output and ReLU output, 8 x 200 float32 each
        12800
    """
    inputs = example_inputs if batch_size is None else resize_batch(example_inputs, batch_size)
    device = model_device(model)
    inputs = to_device(inputs, device)
    rows = batch_size_of(inputs)
    with eval_mode(model), torch.inference_mode():
        call_model(model, inputs)  # warm-up: lazy initialisation is not inference memory
        if device.type == "cpu":
            peak = _cpu_peak(model, inputs)
            method = CPU_METHOD if peak is not None else f"unavailable: {CPU_METHOD} API missing"
        elif device.type == "cuda":
            peak, method = _cuda_peak(model, inputs, device), CUDA_METHOD
        else:
            peak, method = None, f"not measurable on device type {device.type!r} (cpu, cuda)"
    return MemoryReport(batch_size=rows, peak_bytes=peak, device=str(device), method=method)


def _cpu_peak(model: nn.Module, inputs: Any) -> int | None:
    with (
        native_noise_filtered(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        call_model(model, inputs)
    events = _cpu_allocations(prof)
    if events is None:
        return None
    if not events:
        return 0
    start = min(total - size for size, total in events)
    return max(0, max(total for _, total in events) - start)


def _cpu_allocations(prof: profile) -> list[tuple[int, int]] | None:
    """``(alloc_size, total_allocated)`` of every CPU allocation event (``None``: no API)."""
    try:
        from torch._C._profiler import _EventType

        stack = list(prof.profiler.kineto_results.experimental_event_tree())  # type: ignore[union-attr]
    except (AttributeError, ImportError, RuntimeError):
        return None
    out: list[tuple[int, int]] = []
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag != _EventType.Allocation:
            continue
        fields = event.extra_fields
        if fields.device.type == "cpu":
            out.append((int(fields.alloc_size), int(fields.total_allocated)))
    return out


def _cuda_peak(model: nn.Module, inputs: Any, device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    call_model(model, inputs)
    torch.cuda.synchronize(device)
    return max(0, int(torch.cuda.max_memory_allocated(device)) - int(before))
