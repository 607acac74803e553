"""Check one model: prunekit's analyze/equivalence/prune/train, and Torch-Pruning beside it."""

from __future__ import annotations

import copy
import time
import traceback
import warnings
from typing import Any

import torch
from torch import nn

import prunekit
from prunekit.evaluation import count_macs, count_params
from prunekit.graph import call_model, flatten_tensors


def _shapes(model: nn.Module, inputs: Any) -> list[tuple[int, ...]]:
    model.eval()
    with torch.no_grad():
        return [tuple(t.shape) for t in flatten_tensors(call_model(model, inputs))]


def _batch2(inputs: Any) -> Any:
    """Batch-1 inputs doubled: BatchNorm cannot train on one sample per channel."""
    if isinstance(inputs, torch.Tensor):
        return torch.cat([inputs, inputs]) if inputs.dim() and inputs.shape[0] == 1 else inputs
    if isinstance(inputs, dict):
        return {k: _batch2(v) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_batch2(v) for v in inputs)
    return inputs


def _train_step(model: nn.Module, inputs: Any) -> None:
    inputs = _batch2(inputs)
    model.train()
    outs = [o for o in flatten_tensors(call_model(model, inputs)) if o.is_floating_point()]
    loss = sum(o.float().pow(2).mean() for o in outs)
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=1e-3).step()


def _err(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {str(exc)[:300]} @ {last.filename.split('/')[-1]}:{last.lineno}"


def check_prunekit(
    model: nn.Module, inputs: Any, ignore: list[str], trace_mode: str = "eval"
) -> dict[str, Any]:
    """prunekit on one model: every field the coverage table shows."""
    row: dict[str, Any] = {"ok": False}
    want = _shapes(model, inputs)
    row["params_before"] = count_params(model)
    row["macs_before"] = count_macs(model, inputs)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            glob = prunekit.prune(
                model, inputs, ratio=0.5, scope="global", ignore=ignore, trace_mode=trace_mode
            )
            row["prune_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prunekit.prune(
            model, inputs, ratio=0.5, scope="global", ignore=ignore, trace_mode=trace_mode,
            verify="shapes",
        )  # fmt: skip
        row["prune_shapes_s"] = time.perf_counter() - t0
        graph = glob.graph
        row["groups"] = len(graph.groups)
        row["exact"] = sum(g.exact for g in graph.groups)
        row["frozen"] = [
            f"{f.num_units} units ({', '.join(f.members[:2])}): {f.reason}"
            for f in graph.frozen
            if f.kind == "unsupported"
        ]
        row["warnings"] = sorted({str(w.message)[:200] for w in caught})[:5]
        rep = prunekit.testing.check_equivalence(model, inputs, ratio=0.3)
        row["equivalence"] = f"{rep.groups_tested} groups, max err {rep.max_abs_error:.1e}"
        local = prunekit.prune(model, inputs, ratio=0.3, ignore=ignore, trace_mode=trace_mode)
        assert _shapes(local.model, inputs) == want, "local 30%: output shapes changed"
        assert _shapes(glob.model, inputs) == want, "global 50%: output shapes changed"
        row["params_after"] = count_params(glob.model)
        row["macs_after"] = count_macs(glob.model, inputs)
        assert row["params_after"] < row["params_before"], "params did not drop"
        assert row["macs_after"] < row["macs_before"], "MACs did not drop"
        _train_step(glob.model, inputs)
        row["ok"] = True
    except Exception as exc:  # a failure is a result, recorded in the table
        row["error"] = _err(exc)
    return row


def check_torch_pruning(model: nn.Module, inputs: Any, ignore: list[str]) -> dict[str, Any]:
    """Torch-Pruning's BasePruner (L2, ratio 0.5, classifier ignored) on the same model."""
    row: dict[str, Any] = {"ok": False}
    try:
        import torch_pruning as tp

        model = copy.deepcopy(model).eval()
        want = _shapes(model, inputs)
        modules = dict(model.named_modules())
        ignored = [modules[n] for n in ignore if n in modules]
        pruner_cls = getattr(tp.pruner, "BasePruner", None) or tp.pruner.MetaPruner
        t0 = time.perf_counter()
        pruner = pruner_cls(
            model,
            inputs,
            importance=tp.importance.MagnitudeImportance(p=2),
            pruning_ratio=0.5,
            ignored_layers=ignored,
        )
        pruner.step()
        row["prune_s"] = time.perf_counter() - t0
        assert _shapes(model, inputs) == want, "output shapes changed"
        row["params_after"] = count_params(model)
        row["ok"] = True
    except Exception as exc:
        row["error"] = _err(exc)
    return row
