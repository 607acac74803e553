"""ONNX export checked against PyTorch with onnxruntime, and timed beside it.

:func:`export_onnx` tries the default (dynamo, ``torch.export``-based) exporter first and
falls back to the TorchScript-based one when it fails; the report says which wrote the file
and why the first failed. The file is then run with onnxruntime's CPU provider on the
example inputs (and on a doubled batch when the batch dimension is dynamic) and compared
with the PyTorch model; both are timed at the example batch with the same thread count.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, ExportError
from .checks import (
    ExportReport,
    batch_size,
    check_export,
    file_bytes,
    flat_outputs,
    median_latency_ms,
    torch_latency_ms,
    torch_threads,
)

__all__ = ["export_onnx"]

_EXTERNAL_DATA_BYTES = 1 << 30  # weights above 1 GiB go to a side file (protobuf caps at 2 GiB)


def _split_inputs(model: nn.Module, inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional args and kwargs; kwargs in the order of ``forward``'s signature."""
    if isinstance(inputs, dict):
        order = list(inspect.signature(model.forward).parameters)
        ranked = sorted(inputs, key=lambda k: order.index(k) if k in order else len(order))
        return (), {k: inputs[k] for k in ranked}
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def _dynamic_shapes(obj: Any, batch: int, dim: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return {0: dim} if obj.dim() > 0 and obj.shape[0] == batch else None
    if isinstance(obj, dict):
        return {k: _dynamic_shapes(v, batch, dim) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_dynamic_shapes(v, batch, dim) for v in obj)
    return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress prints, deprecation warnings and registry logs."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


EXPORTERS = ("auto", "dynamo", "torchscript")


def _dynamo(model: nn.Module, inputs: Any, path: Path, opset: int | None, dynamic: bool) -> None:
    args, kwargs = _split_inputs(model, inputs)
    batch = batch_size(inputs)
    shapes = _dynamic_shapes(kwargs or args, batch or 0, torch.export.Dim("batch"))
    large = sum(p.numel() * p.element_size() for p in model.parameters()) > _EXTERNAL_DATA_BYTES
    with _quiet():
        torch.onnx.export(
            model, args, str(path), kwargs=kwargs or None, opset_version=opset, dynamo=True,
            external_data=large, verbose=False,
            dynamic_shapes=shapes if dynamic and batch is not None else None,
        )  # fmt: skip


def _legacy(model: nn.Module, inputs: Any, path: Path, opset: int | None, dynamic: bool) -> None:
    args, kwargs = _split_inputs(model, inputs)
    names = list(kwargs) or [f"input_{i}" for i in range(len(flat_outputs(args)))]
    axes = {n: {0: "batch"} for n in names} if dynamic and batch_size(inputs) is not None else None
    with _quiet():
        torch.onnx.export(
            model, args, str(path), kwargs=kwargs or None, opset_version=opset, dynamo=False,
            input_names=names, dynamic_axes=axes,
        )  # fmt: skip


def _export(
    model: nn.Module, inputs: Any, path: Path, opset: int | None, dynamic: bool, exporter: str
) -> tuple[str, str]:
    """Write the file with ``exporter``; return (exporter used, note)."""
    if exporter not in EXPORTERS:
        raise ConfigError(f"exporter={exporter!r} is unknown; use one of {EXPORTERS}")
    reason = ""
    if exporter in ("auto", "dynamo"):
        try:
            _dynamo(model, inputs, path, opset, dynamic)
            return "dynamo", ""
        except Exception as exc:  # noqa: BLE001  (any exporter failure -> fallback, recorded)
            reason = (
                f"dynamo exporter failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            )
            if exporter == "dynamo":
                raise ExportError(
                    f"ONNX export of {type(model).__name__}: {reason}; pass exporter='auto' to "
                    "fall back to the TorchScript-based exporter"
                ) from exc
    try:
        _legacy(model, inputs, path, opset, dynamic)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(
            f"ONNX export of {type(model).__name__} failed: {reason + '; ' if reason else ''}"
            f"TorchScript-based exporter: {type(exc).__name__}: {exc}. Check that the model runs "
            "on the example inputs and uses ops ONNX supports"
        ) from exc
    return "torchscript", f"{reason}; used the TorchScript-based exporter" if reason else ""


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ExportError(
            f"{name} is not installed; install the export extra (pip install 'prunekit[export]') "
            "or pass check=False, latency=False to only write the file"
        ) from exc


def _session(path: Path, threads: int) -> Any:
    ort = _import("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _opset(path: Path) -> int | None:
    """The default-domain opset the file declares (read without its external weights)."""
    try:
        onnx = importlib.import_module("onnx")
    except ImportError:
        return None
    proto = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def _feed(session: Any, model: nn.Module, inputs: Any) -> dict[str, np.ndarray]:
    """onnxruntime feed: by name for keyword inputs, else by position."""
    names = [i.name for i in session.get_inputs()]
    args, kwargs = _split_inputs(model, inputs)
    if kwargs and set(names) <= set(kwargs):
        return {n: kwargs[n].detach().cpu().numpy() for n in names}
    tensors = flat_outputs(kwargs or args)
    if len(tensors) != len(names):
        raise ExportError(
            f"the ONNX graph takes {len(names)} inputs ({names}), the example inputs hold "
            f"{len(tensors)} tensors; pass example inputs made only of the tensors forward uses"
        )
    return {n: t.detach().cpu().numpy() for n, t in zip(names, tensors)}


def export_onnx(
    model: nn.Module,
    example_inputs: Any,
    path: str | Path,
    *,
    opset: int | None = None,
    dynamic_batch: bool = True,
    exporter: str = "auto",
    check: bool = True,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    latency: bool = True,
    threads: int = 1,
    warmup: int = 3,
    repeats: int = 20,
) -> ExportReport:
    """Export ``model`` to ONNX, check it with onnxruntime, and time both.

    Args:
        model: The (pruned) model; exported in eval mode, its flags restored afterwards.
        example_inputs: A tensor, tuple of positional inputs, or dict of keyword inputs.
        path: The ``.onnx`` file to write (parent directories are created).
        opset: ONNX opset version (``None``: the exporter's default).
        dynamic_batch: Make dim 0 of every input with the example batch size dynamic.
        exporter: ``"auto"`` (the dynamo exporter, falling back to the TorchScript-based one
            when it fails), ``"dynamo"`` (no fallback) or ``"torchscript"``.
        check: Compare onnxruntime outputs with PyTorch's (also at a doubled batch when
            ``dynamic_batch``); a mismatch beyond ``atol + rtol * |torch|`` raises.
        latency: Time PyTorch and onnxruntime at the example batch (median of ``repeats``
            runs after ``warmup``), both with ``threads`` intra-op threads.

    Returns:
        An :class:`ExportReport` (``exporter`` is ``"dynamo"`` or ``"torchscript"``).

    Raises:
        ExportError: both exporters failed, or the ONNX model's outputs differ from PyTorch's.

    Example:
        >>> import tempfile, os, torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
        >>> path = os.path.join(tempfile.mkdtemp(), "net.onnx")
        >>> rep = export_onnx(net, torch.randn(2, 4), path, exporter="torchscript", latency=False)
        >>> rep.format, rep.max_abs_diff < 1e-5, os.path.getsize(path) == rep.bytes
        ('onnx', True, True)
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch_threads(threads):
            used, note = _export(model, example_inputs, out, opset, dynamic_batch, exporter)
            session = _session(out, threads) if (check or latency) else None
            report = ExportReport(
                "onnx", str(out), file_bytes(out, f"{out}.data"), used, threads=threads
            )
            report.opset = _opset(out)
            notes = [note] if note else []
            if check and session is not None:
                report.max_abs_diff, report.max_rel_diff, checked = check_export(
                    model, lambda x: session.run(None, _feed(session, model, x)), example_inputs,
                    rtol=rtol, atol=atol, dynamic_batch=dynamic_batch, what="the ONNX model",
                )  # fmt: skip
                notes += checked
            if latency and session is not None:
                feed = _feed(session, model, example_inputs)
                report.torch_latency_ms = torch_latency_ms(
                    model, example_inputs, warmup=warmup, repeats=repeats
                )
                report.export_latency_ms = median_latency_ms(
                    lambda: session.run(None, feed), warmup=warmup, repeats=repeats
                )
    finally:
        for m, flag in flags:
            m.training = flag
    report.notes = "; ".join(notes)
    return report
