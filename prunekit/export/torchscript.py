"""TorchScript export (``torch.jit.trace``), reloaded and checked against PyTorch, and timed.

TorchScript is deprecated in recent PyTorch releases but still the format many C++ and
mobile runtimes load; its deprecation warnings are silenced during the export only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ExportError
from .checks import (
    ExportReport,
    call_model,
    check_export,
    file_bytes,
    flat_outputs,
    median_latency_ms,
    torch_latency_ms,
    torch_threads,
)

__all__ = ["export_torchscript"]


def _trace(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return torch.jit.trace(model, example_kwarg_inputs=inputs, strict=False, check_trace=False)
    args = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    return torch.jit.trace(model, args, strict=False, check_trace=False)


def _export(model: nn.Module, inputs: Any, path: Path) -> Any:
    """Trace, save and reload; the reloaded module is what gets checked and timed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = _trace(model, inputs)
            torch.jit.save(traced, str(path))
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001  (tracing raises many exception types)
        raise ExportError(
            f"TorchScript export of {type(model).__name__} to {path} failed "
            f"({type(exc).__name__}: {exc}); check that the model runs on the example inputs "
            "and returns tensors, tuples or dicts of tensors"
        ) from exc


def export_torchscript(
    model: nn.Module,
    example_inputs: Any,
    path: str | Path,
    *,
    dynamic_batch: bool = True,
    check: bool = True,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    latency: bool = True,
    threads: int = 1,
    warmup: int = 3,
    repeats: int = 20,
) -> ExportReport:
    """Trace ``model`` with ``torch.jit.trace``, save it, reload it, check it and time it.

    Args:
        model: The (pruned) model; traced in eval mode, its flags restored afterwards.
        example_inputs: A tensor, tuple of positional inputs, or dict of keyword inputs.
        path: The ``.pt`` file to write (parent directories are created).
        dynamic_batch: Also check the reloaded module at twice the example batch (a trace
            that baked the batch size in fails this check).
        check: Compare the reloaded module's outputs with PyTorch's; a mismatch beyond
            ``atol + rtol * |torch|`` raises.
        latency: Time the eager and the reloaded module at the example batch (median of
            ``repeats`` runs after ``warmup``), both with ``threads`` intra-op threads.

    Returns:
        An :class:`ExportReport` with ``format="torchscript"``, ``exporter="jit.trace"``.

    Raises:
        ExportError: tracing failed, or the reloaded module's outputs differ from PyTorch's.

    Example:
        >>> import tempfile, os, torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
        >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
        >>> rep = export_torchscript(net, torch.randn(2, 4), path, latency=False)
        >>> rep.exporter, rep.max_abs_diff
        ('jit.trace', 0.0)
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch_threads(threads):
            loaded = _export(model, example_inputs, out)
            report = ExportReport(
                "torchscript", str(out), file_bytes(out), "jit.trace", threads=threads
            )

            def run(x: Any) -> list[torch.Tensor]:
                with torch.inference_mode():
                    return flat_outputs(call_model(loaded, x))

            if check:
                report.max_abs_diff, report.max_rel_diff, notes = check_export(
                    model, run, example_inputs, rtol=rtol, atol=atol,
                    dynamic_batch=dynamic_batch, what="the TorchScript module",
                )  # fmt: skip
                report.notes = "; ".join(notes)
            if latency:
                report.torch_latency_ms = torch_latency_ms(
                    model, example_inputs, warmup=warmup, repeats=repeats
                )
                report.export_latency_ms = median_latency_ms(
                    lambda: run(example_inputs), warmup=warmup, repeats=repeats
                )
    finally:
        for m, flag in flags:
            m.training = flag
    return report
