"""The inference form of a model: what a deployment runs, for honest latency numbers.

Eager PyTorch pays for every BatchNorm as a separate memory-bound pass, and a narrow
pruned conv pays it proportionally more than a wide one: timing the training form
under-states what pruning buys in deployment. :func:`inference_form` returns an eval copy
with every ``Conv/Linear -> BatchNorm`` pair folded into one layer (``torch.fx``'s
``fuse``; models fx cannot trace keep their BatchNorms, and the form says so) and, for
image models, the channels-last memory format that CPU convolution kernels prefer. The
original model is never modified. Compare models only in the same form.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from prunekit.evaluation._runtime import _map_tensors
from prunekit.graph import flatten_tensors
from prunekit.surgery import get_handler

__all__ = ["inference_form", "to_channels_last"]


def to_channels_last(obj: Any) -> Any:
    """``obj`` with every 4-D tensor in channels-last memory format (same values).

    Example:
        >>> import torch
        >>> to_channels_last(torch.zeros(1, 3, 4, 4)).is_contiguous(
        ...     memory_format=torch.channels_last)
        True
    """
    return _map_tensors(
        obj, lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
    )


def _folds(model: nn.Module) -> bool:
    """Does ``model`` hold a layer a deployment folds away (a BatchNorm; asked of the
    layers' surgery handlers, :meth:`~prunekit.surgery.Handler.folds_at_inference`)?"""
    return any(get_handler(m).folds_at_inference(m) for m in model.modules())


def inference_form(model: nn.Module, example_inputs: Any) -> tuple[nn.Module, str]:
    """An eval copy of ``model`` as deployed, and a short description of what was done.

    Args:
        model: Any model; it is not modified.
        example_inputs: Its inputs (4-D tensors switch the copy to channels-last).

    Returns:
        ``(copy, form)``: ``form`` lists the transforms, e.g. ``"bn-folded+channels-last"``;
        ``"as-is"`` when none applied.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
        >>> x = torch.randn(2, 3, 8, 8)
        >>> fast, form = inference_form(net, x)
        >>> form, torch.allclose(fast(x), net(x), atol=1e-5)
        ('bn-folded+channels-last', True)
    """
    work = copy.deepcopy(model).eval()
    steps = []
    if _folds(work):
        try:
            from torch.fx.experimental.optimization import fuse

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fused = fuse(work, inplace=False)
            if not _folds(fused):
                work = fused
                steps.append("bn-folded")
            elif len(list(fused.modules())) < len(list(work.modules())):
                work = fused
                steps.append("bn-partly-folded")
        except Exception:  # fx cannot trace it: time the BatchNorms as they are
            steps.append("bn-not-folded")
    if any(t.dim() == 4 for t in flatten_tensors(example_inputs)):
        work = work.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        steps.append("channels-last")
    return work, "+".join(steps) or "as-is"
