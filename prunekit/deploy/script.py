"""A cascade as one TorchScript module: traced stages, scripted routing.

Routing depends on the data (which rows go on), which ``torch.jit.trace`` cannot record, so
each stage is traced on the example inputs (its logits picked from its output first) and
the routing loop is compiled with ``torch.jit.script``; it calls the same confidence code as
the eager cascade (:func:`~prunekit.deploy.confidence.confidence_of`). The file is reloaded
and checked against the eager cascade on the example batch and at twice its size.
Single-tensor inputs only (``forward(x)``), as TorchScript runtimes call it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunekit.errors import ExportError
from prunekit.export.checks import ExportReport, check_export, file_bytes, flat_outputs
from prunekit.outputs import main_output

from .cascade import Cascade
from .confidence import class_logits, confidence_code, confidence_of

__all__ = ["ScriptedCascade", "export_cascade_torchscript"]


class _Logits(nn.Module):
    """A stage with its logits picked from whatever it returns (what gets traced)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = main_output(self.model(x))
        if out is None:
            raise ExportError(f"{type(self.model).__name__} returns no tensor to route on")
        return class_logits(out)


class ScriptedCascade(nn.Module):
    """The routing loop in TorchScript-compatible form (stages already traced)."""

    def __init__(self, stages: list[nn.Module], thresholds: list[float], kind: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.thresholds = [float(t) for t in thresholds] + [0.0]
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.size(0)
        active = torch.arange(n, device=x.device)
        sub = x
        out = torch.empty(0)
        last = len(self.stages) - 1
        for k, stage in enumerate(self.stages):  # unrolled by TorchScript: no break, a guard
            if k == 0 or active.numel() > 0:
                logits = stage(sub)
                if k == 0:
                    out = torch.empty(
                        [n] + logits.shape[1:], dtype=logits.dtype, device=logits.device
                    )
                if k == last:
                    keep = torch.ones(logits.size(0), dtype=torch.bool, device=logits.device)
                else:
                    keep = confidence_of(logits, self.kind) >= self.thresholds[k]
                out[active[keep]] = logits[keep]
                sub = sub[~keep]
                active = active[~keep]
        return out


def export_cascade_torchscript(
    cascade: Cascade,
    example_inputs: torch.Tensor,
    path: str | Path,
    *,
    check: bool = True,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> ExportReport:
    """Write ``cascade`` as one TorchScript file, reload it and check it against eager.

    Args:
        cascade: The cascade (its thresholds as set).
        example_inputs: One input tensor batch (``forward(x)``) to trace the stages with;
            include rows that fall back, so that the check covers both paths.
        path: The ``.pt`` file (parent directories are created).
        check: Compare the reloaded module with the eager cascade (example batch and twice
            it); a mismatch beyond ``atol + rtol * |eager|`` raises.

    Returns:
        An :class:`~prunekit.export.ExportReport` (``exporter="jit.trace+script"``).

    Raises:
        ExportError: the inputs are not one tensor, a stage cannot be traced, or the
            reloaded module's outputs differ from the eager cascade's.

    Example:
        >>> import os, tempfile, torch
        >>> from torch import nn
        >>> cascade = Cascade([nn.Linear(4, 3), nn.Linear(4, 3)], threshold=0.4)
        >>> path = os.path.join(tempfile.mkdtemp(), "cascade.pt")
        >>> export_cascade_torchscript(cascade, torch.randn(8, 4), path).max_abs_diff
        0.0
    """
    if not isinstance(example_inputs, torch.Tensor):
        raise ExportError(
            f"example_inputs is a {type(example_inputs).__name__}; the TorchScript cascade "
            "takes one tensor (forward(x)): pass one input batch tensor"
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = [(m, m.training) for m in cascade.modules()]
    cascade.eval()
    try:
        loaded = _write(cascade, example_inputs, out)
        report = ExportReport("torchscript", str(out), file_bytes(out), "jit.trace+script")
        if check:

            def run(x: Any) -> list[torch.Tensor]:
                with torch.inference_mode():
                    return flat_outputs(loaded(x))

            report.max_abs_diff, report.max_rel_diff, notes = check_export(
                cascade, run, example_inputs, rtol=rtol, atol=atol, dynamic_batch=True,
                what="the TorchScript cascade",
            )  # fmt: skip
            report.notes = "; ".join(notes)
    finally:
        for m, flag in flags:
            m.training = flag
    return report


def _write(cascade: Cascade, example: torch.Tensor, out: Path) -> Any:
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = [
                torch.jit.trace(_Logits(s), (example,), strict=False, check_trace=False)
                for s in cascade.stages
            ]
            scripted = torch.jit.script(
                ScriptedCascade(traced, list(cascade.thresholds),
                                confidence_code(cascade.confidence))
            )  # fmt: skip
            torch.jit.save(scripted, str(out))
            return torch.jit.load(str(out), map_location="cpu")
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001  (tracing and scripting raise many types)
        raise ExportError(
            f"TorchScript export of the cascade to {out} failed ({type(exc).__name__}: {exc}); "
            "check that every stage runs on the example inputs and returns logits"
        ) from exc
