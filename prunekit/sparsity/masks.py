"""Keep-masks from per-weight scores: unstructured (per layer, per row, global) and N:M.

A mask is a bool tensor shaped like the weight, ``True`` = keep. Pruning removes the
lowest scores; ties go to the lower flat index, so the count removed is always exact.
"""

from __future__ import annotations

import re

import torch

from ..errors import ConfigError

__all__ = ["SCOPES", "unstructured_mask", "row_mask", "global_masks", "nm_mask", "parse_pattern"]

SCOPES = ("local", "row", "global")


def _check_sparsity(sparsity: float) -> float:
    ok = isinstance(sparsity, (int, float)) and not isinstance(sparsity, bool)
    if not ok or not 0.0 <= float(sparsity) < 1.0:
        raise ConfigError(
            f"sparsity={sparsity!r} is outside [0, 1); pass the fraction of weights to zero"
        )
    return float(sparsity)


def _prune_lowest(flat: torch.Tensor, count: int) -> torch.Tensor:
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    if count > 0:
        keep[torch.argsort(flat, stable=True)[:count]] = False
    return keep


def unstructured_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Remove exactly ``floor(sparsity * numel)`` weights: the lowest scores of the layer.

    Example:
        >>> import torch
        >>> unstructured_mask(torch.tensor([[0.3, 0.1], [0.4, 0.2]]), 0.5)
        tensor([[ True, False],
                [ True, False]])
    """
    s = _check_sparsity(sparsity)
    flat = scores.detach().float().reshape(-1)
    return _prune_lowest(flat, int(s * flat.numel() + 1e-9)).reshape(scores.shape)


def row_mask(scores: torch.Tensor, sparsity: float, out_dim: int = 0) -> torch.Tensor:
    """Remove ``floor(sparsity * row size)`` weights of every output unit (Wanda's grouping).

    Example:
        >>> import torch
        >>> row_mask(torch.tensor([[0.3, 0.1], [0.4, 0.5]]), 0.5).int().tolist()
        [[1, 0], [0, 1]]
    """
    s = _check_sparsity(sparsity)
    moved = scores.detach().float().movedim(out_dim, 0)
    rows = moved.reshape(moved.shape[0], -1)
    count = int(s * rows.shape[1] + 1e-9)
    keep = torch.ones_like(rows, dtype=torch.bool)
    if count > 0:
        keep.scatter_(1, torch.argsort(rows, dim=1, stable=True)[:, :count], False)
    return keep.reshape(moved.shape).movedim(0, out_dim)


def global_masks(scores: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Remove ``floor(sparsity * total)`` weights with the lowest scores across all layers.

    Scores must be comparable across layers (raw magnitudes are; see ``scope`` in
    :func:`prunekit.sparsity.prune_weights`).

    Example:
        >>> import torch
        >>> m = global_masks({"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.5, 3.0])}, 0.5)
        >>> m["a"].tolist(), m["b"].tolist()
        ([False, True], [False, True])
    """
    s = _check_sparsity(sparsity)
    names = list(scores)
    flat = [scores[n].detach().float().reshape(-1).cpu() for n in names]
    everything = torch.cat(flat) if flat else torch.zeros(0)
    keep = _prune_lowest(everything, int(s * everything.numel() + 1e-9))
    out, start = {}, 0
    for n, f in zip(names, flat):
        out[n] = keep[start : start + f.numel()].reshape(scores[n].shape).to(scores[n].device)
        start += f.numel()
    return out


def parse_pattern(pattern: str | tuple[int, int]) -> tuple[int, int]:
    """``"2:4"`` or ``(2, 4)`` -> ``(n, m)``: keep ``n`` of every ``m`` consecutive weights.

    Example:
        >>> parse_pattern("2:4"), parse_pattern((4, 8))
        ((2, 4), (4, 8))
    """
    if isinstance(pattern, str) and re.fullmatch(r"\s*\d+\s*:\s*\d+\s*", pattern):
        n, m = (int(p) for p in pattern.split(":"))
    elif (
        isinstance(pattern, tuple)
        and len(pattern) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in pattern)
    ):
        n, m = pattern
    else:
        raise ConfigError(f"pattern={pattern!r} is not 'N:M' (e.g. '2:4') or a tuple (2, 4)")
    if not 0 < n < m:
        raise ConfigError(f"pattern={pattern!r} needs 0 < N < M (keep N of every M), e.g. '2:4'")
    return n, m


def nm_mask(scores: torch.Tensor, n: int, m: int, in_dim: int = 1) -> torch.Tensor:
    """Keep the ``n`` highest scores of every ``m`` consecutive weights along ``in_dim``.

    For a conv weight ``[out, in, kh, kw]`` the groups run along ``in`` at each kernel
    position (the layout sparse tensor cores use after moving ``in`` last).

    Raises:
        ConfigError: the input dim's size is not a multiple of ``m``.

    Example:
        >>> import torch
        >>> nm_mask(torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.1, 0.4, 0.3, 0.2]]), 2, 4).int().tolist()
        [[1, 0, 1, 0, 0, 1, 1, 0]]
    """
    size = scores.shape[in_dim]
    if size % m:
        raise ConfigError(
            f"input dim {in_dim} has {size} weights, not a multiple of M={m}; choose an M that "
            "divides it or leave the layer out (ignore=)"
        )
    moved = scores.detach().float().movedim(in_dim, -1)
    blocks = moved.reshape(*moved.shape[:-1], size // m, m)
    keep = torch.zeros_like(blocks, dtype=torch.bool)
    keep.scatter_(-1, torch.topk(blocks, n, dim=-1, sorted=False).indices, True)
    return keep.reshape(moved.shape).movedim(-1, in_dim)
