"""What an export produced and how it was checked: :class:`ExportReport`, output comparison,
and the latency timer shared by the ONNX and TorchScript exporters."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._modelio import call_model, flatten_tensors
from ..errors import ConfigError, ExportError

__all__ = [
    "ExportReport",
    "batch_size",
    "call_model",
    "check_export",
    "compare_outputs",
    "doubled_batch",
    "flat_outputs",
    "median_latency_ms",
    "torch_threads",
]


@dataclass
class ExportReport:
    """One exported file and how well it reproduces the PyTorch model.

    Attributes:
        format: ``"onnx"`` or ``"torchscript"``.
        path: The written file.
        bytes: Size on disk (including an ONNX external-data file).
        exporter: Which exporter wrote it (``"dynamo"``, ``"torchscript"``, ``"jit.trace"``).
        max_abs_diff: Largest ``|exported - torch|`` over every output (``None``: unchecked).
        max_rel_diff: Largest ``|exported - torch| / (|torch| + atol)``.
        torch_latency_ms: Median PyTorch latency at the example batch (``None``: not timed).
        export_latency_ms: Median latency of the exported model, same inputs and threads.
        threads: Intra-op threads used for both timings.
        opset: The ONNX opset of the file (``None`` for other formats).
        notes: Anything worth knowing (a fallback and why, a dynamic-batch check).

    Example:
        >>> ExportReport("onnx", "m.onnx", 1024, "dynamo", 1e-7, 2e-7).to_dict()["bytes"]
        1024
    """

    format: str
    path: str
    bytes: int
    exporter: str
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    torch_latency_ms: float | None = None
    export_latency_ms: float | None = None
    threads: int = 1
    opset: int | None = None
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)

    @property
    def speedup(self) -> float | None:
        """PyTorch latency over exported-model latency (``None`` when not timed)."""
        if not self.torch_latency_ms or not self.export_latency_ms:
            return None
        return self.torch_latency_ms / self.export_latency_ms


flat_outputs = flatten_tensors
"""Every tensor in a model output, in order (:func:`prunekit._modelio.flatten_tensors`)."""


def batch_size(inputs: Any) -> int | None:
    """Dim 0 of the first input tensor (``None`` when there is none or it is a scalar)."""
    tensors = flat_outputs(inputs)
    return int(tensors[0].shape[0]) if tensors and tensors[0].dim() > 0 else None


def doubled_batch(inputs: Any, batch: int) -> Any:
    """``inputs`` with every tensor whose dim 0 is ``batch`` repeated twice along dim 0.

    Example:
        >>> doubled_batch({"x": torch.ones(3, 2), "n": torch.ones(1)}, 3)["x"].shape
        torch.Size([6, 2])
    """
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() > 0 and inputs.shape[0] == batch:
            return torch.cat([inputs, inputs])
        return inputs
    if isinstance(inputs, dict):
        return {k: doubled_batch(v, batch) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(doubled_batch(v, batch) for v in inputs)
    return inputs


def compare_outputs(
    expected: Sequence[torch.Tensor],
    actual: Sequence[Any],
    *,
    rtol: float,
    atol: float,
    what: str,
) -> tuple[float, float]:
    """Max absolute and relative difference; ExportError when any output is off tolerance.

    An element fails when ``|actual - expected| > atol + rtol * |expected|``.

    Example:
        >>> compare_outputs([torch.tensor([1.0, 2.0])], [np.array([1.0, 2.5])],
        ...                 rtol=0.5, atol=0.0, what="demo")
        (0.5, 0.25)
    """
    if len(expected) != len(actual):
        raise ExportError(
            f"{what} returns {len(actual)} outputs, PyTorch returns {len(expected)}; the "
            "model's output structure did not survive export (return tensors, tuples or dicts)"
        )
    max_abs = max_rel = 0.0
    for i, (exp, act) in enumerate(zip(expected, actual)):
        e = exp.detach().to("cpu", torch.float64).numpy()
        a = np.asarray(act.detach().cpu() if isinstance(act, torch.Tensor) else act, np.float64)
        if e.shape != a.shape:
            raise ExportError(
                f"{what} output {i} has shape {a.shape}, PyTorch's has {e.shape}; export the "
                "model with the inputs it is run with"
            )
        if e.size == 0:
            continue
        diff = np.abs(a - e)
        max_abs = max(max_abs, float(diff.max()))
        max_rel = max(max_rel, float((diff / (np.abs(e) + atol)).max()))
        bad = diff > atol + rtol * np.abs(e)
        if bad.any():
            raise ExportError(
                f"{what} output {i} differs from PyTorch at {int(bad.sum())} of {e.size} "
                f"elements (max abs diff {float(diff.max()):.3g}, rtol={rtol}, atol={atol}); "
                "loosen rtol/atol if the gap is numerical noise, else the export is wrong"
            )
    return max_abs, max_rel


def check_export(
    model: nn.Module,
    run: Callable[[Any], Sequence[Any]],
    inputs: Any,
    *,
    rtol: float,
    atol: float,
    dynamic_batch: bool,
    what: str,
) -> tuple[float, float, list[str]]:
    """Compare ``run(inputs)`` (an exported model's flat outputs) with ``model(inputs)``.

    With ``dynamic_batch`` the comparison is repeated at twice the example batch.

    Returns:
        ``(max_abs_diff, max_rel_diff, notes)``.

    Raises:
        ExportError: an output is off tolerance, or the export does not run at the doubled
            batch.
    """
    with torch.inference_mode():
        expected = flat_outputs(call_model(model, inputs))
    abs1, rel1 = compare_outputs(expected, run(inputs), rtol=rtol, atol=atol, what=what)
    batch = batch_size(inputs)
    if not dynamic_batch or batch is None:
        return abs1, rel1, []
    bigger = doubled_batch(inputs, batch)
    with torch.inference_mode():
        expected = flat_outputs(call_model(model, bigger))
    try:
        actual = run(bigger)
    except Exception as exc:  # noqa: BLE001  (runtimes raise their own exception types)
        raise ExportError(
            f"{what} does not run at batch {2 * batch} ({exc}); its batch dimension is fixed, "
            "pass dynamic_batch=False to export and check only the example batch"
        ) from exc
    abs2, rel2 = compare_outputs(
        expected, actual, rtol=rtol, atol=atol, what=f"{what} at batch {2 * batch}"
    )
    return max(abs1, abs2), max(rel1, rel2), [f"checked at batch {batch} and {2 * batch}"]


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``; restore the old count."""
    if threads < 1:
        raise ConfigError(f"threads={threads} must be a positive int (e.g. 1)")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def median_latency_ms(fn: Callable[[], Any], *, warmup: int = 3, repeats: int = 20) -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` untimed calls.

    Example:
        >>> median_latency_ms(lambda: sum(range(100)), warmup=1, repeats=3) >= 0.0
        True
    """
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats={repeats} must be >= 1 and warmup={warmup} >= 0")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(statistics.median(times))


def torch_latency_ms(model: nn.Module, inputs: Any, *, warmup: int, repeats: int) -> float:
    """Median latency of ``model(inputs)`` under ``torch.inference_mode``."""

    def run() -> None:
        with torch.inference_mode():
            call_model(model, inputs)

    return median_latency_ms(run, warmup=warmup, repeats=repeats)


def file_bytes(*paths: str | Path) -> int:
    """Total size of the files that exist among ``paths``."""
    return sum(Path(p).stat().st_size for p in paths if Path(p).is_file())
