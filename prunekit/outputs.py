"""The tensor a model's raw output stands for (shared by evaluation and recovery)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["main_output"]


def main_output(output: Any) -> torch.Tensor | None:
    """``output`` itself if a tensor, else its ``logits`` (attribute or dict key), else the
    first item of a tuple/list; ``None`` when none of these is a tensor.

    Example:
        >>> import torch
        >>> main_output({"logits": torch.ones(1)}), main_output("text")
        (tensor([1.]), None)
    """
    if isinstance(output, torch.Tensor):
        return output
    logits = output.get("logits") if isinstance(output, dict) else getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None
