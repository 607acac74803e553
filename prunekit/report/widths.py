"""Per-layer output widths before and after pruning, read from weight shapes."""

from __future__ import annotations

from torch import nn

__all__ = ["layer_widths"]


def _out_width(module: nn.Module) -> int | None:
    weight = module._parameters.get("weight")
    if weight is None or weight.dim() == 0:
        return None
    return int(weight.shape[0])


def layer_widths(original: nn.Module, pruned: nn.Module) -> dict[str, tuple[int, int]]:
    """Output width of every module with its own ``weight`` parameter, before and after.

    The width is dim 0 of ``weight``: output features of a Linear, output channels of a
    convolution, the normalised features of a norm layer (embeddings report their
    vocabulary size, transposed convolutions their input channels). A module the pruned
    model no longer has gets width 0.

    Args:
        original: The unpruned model.
        pruned: The pruned model (same module names).

    Returns:
        ``{module name: (width before, width after)}`` in the original's module order.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> pruned = prunekit.prune(net, torch.randn(1, 4), ratio=0.5).model
        >>> layer_widths(net, pruned)
        {'0': (8, 4), '2': (2, 2)}
    """
    after = dict(pruned.named_modules())
    widths: dict[str, tuple[int, int]] = {}
    for name, module in original.named_modules():
        before = _out_width(module)
        if before is None:
            continue
        now = _out_width(after[name]) if name in after else None
        widths[name] = (before, now or 0)
    return widths
