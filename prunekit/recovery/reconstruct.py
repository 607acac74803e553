"""Least-squares layer reconstruction: the linear algebra behind :func:`compensate`.

A refittable layer (Linear, Conv1d, Conv2d: those whose surgery handler gives a
:class:`~prunekit.surgery.RefitGeometry`) is affine in its (unfolded) input:
``Y = X W^T + b`` with ``X`` the input rows (for a convolution, the im2col patches) and ``W``
the weight flattened to ``[out, in * kernel elements]``. Given inputs ``X'`` of the pruned
layer and targets ``Y`` (outputs of the unpruned layer at its kept units), the ridge solution
of ``min ||X' W^T + b - Y||^2`` comes from the normal equations, accumulated batch by batch
in float64 so memory stays ``O(d^2)`` whatever the amount of calibration data
(:class:`~prunekit.lstsq.NormalEquations`, shared with the set-aware importance criteria).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..lstsq import NormalEquations
from ..surgery import RefitGeometry, get_handler

__all__ = [
    "NormalEquations",
    "design_rows",
    "geometry_of",
    "infer_kept_rows",
    "layer_bias",
    "layer_params",
    "layer_weight",
    "target_rows",
]


def geometry_of(layer: nn.Module) -> RefitGeometry | str | None:
    """``layer``'s refit geometry from its handler, why it cannot be refit, or ``None``
    (a layer that is never refit).

    Example:
        >>> import torch
        >>> geometry_of(torch.nn.Conv2d(4, 4, 3, groups=2)), geometry_of(torch.nn.ReLU())
        ('grouped convolution (groups > 1)', None)
    """
    return get_handler(layer).refit_geometry(layer)


def _geometry(layer: nn.Module) -> RefitGeometry:
    geo = geometry_of(layer)
    if not isinstance(geo, RefitGeometry):
        why = geo or "its handler gives no refit geometry"
        raise ConfigError(
            f"{type(layer).__name__} cannot be refit ({why}); refit a Linear, Conv1d or "
            "Conv2d with groups=1"
        )
    return geo


def design_rows(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The rows ``X`` with ``layer(x) == X @ W^T + b`` (row order as in :func:`target_rows`).

    Example:
        >>> import torch
        >>> conv = torch.nn.Conv2d(2, 3, 3, padding=1)
        >>> x = torch.randn(2, 2, 5, 5)
        >>> rows = design_rows(conv, x)
        >>> y = rows @ conv.weight.reshape(3, -1).T + conv.bias
        >>> torch.allclose(y, target_rows(conv, conv(x), range(3)), atol=1e-5)
        True
    """
    return _geometry(layer).rows(x)


def target_rows(layer: nn.Module, y: torch.Tensor, kept: Sequence[int]) -> torch.Tensor:
    """The outputs ``y`` of ``layer`` at the ``kept`` units, one row per position."""
    return _geometry(layer).targets(y, kept)


def layer_weight(layer: nn.Module) -> torch.Tensor:
    """``layer.weight`` (output units on dim 0 for every refittable layer)."""
    w = layer.weight
    assert isinstance(w, torch.Tensor)
    return w


def layer_bias(layer: nn.Module) -> torch.Tensor | None:
    """``layer.bias``, or ``None``."""
    b = getattr(layer, "bias", None)
    return b if isinstance(b, torch.Tensor) else None


def layer_params(layer: nn.Module) -> torch.Tensor:
    """``[out, d (+1)]``: the weight flattened, with the bias as an extra last column."""
    weight, bias = layer_weight(layer), layer_bias(layer)
    w = weight.detach().reshape(weight.shape[0], -1).double()
    if bias is None:
        return w
    return torch.cat([w, bias.detach().double()[:, None]], 1)


def infer_kept_rows(
    pruned: torch.Tensor, original: torch.Tensor, probes: int = 3
) -> list[int] | None:
    """Which rows (output units) of ``original`` the rows of ``pruned`` are, right after a cut.

    A structured cut copies ``original[kept_rows][:, kept_cols]`` (kernels intact, order
    preserved), so every entry of a pruned row appears bit for bit in its original row. For
    each pruned row, its ``probes`` largest kernel vectors are looked up among all of the
    original's (sorted by first element, then compared exactly); the original rows holding
    all of them must be exactly one, and the rows must come out in increasing order.
    Returns ``None`` when that fails (weights changed since the cut, or repeated values).

    Example:
        >>> import torch
        >>> w = torch.randn(6, 5, 3, 3)
        >>> infer_kept_rows(w[[1, 2, 5]][:, [0, 3]], w)
        [1, 2, 5]
        >>> infer_kept_rows(w[[1, 2, 5]][:, [0, 3]] + 1e-3, w) is None
        True
    """
    out_o, out_p = original.shape[0], pruned.shape[0]
    if out_p == out_o:
        return list(range(out_o))
    orig = original.detach().reshape(out_o, original.shape[1], -1)
    prn = pruned.detach().to(orig).reshape(out_p, pruned.shape[1], -1)
    in_o = orig.shape[1]
    keys, order = orig[..., 0].reshape(-1).sort()
    ranked = prn.norm(dim=-1).argsort(dim=1, descending=True)[:, :probes]
    kept: list[int] = []
    for i in range(out_p):
        rows: set[int] | None = None
        for j in ranked[i].tolist():
            v = prn[i, j]
            lo = int(torch.searchsorted(keys, v[:1], right=False))
            hi = int(torch.searchsorted(keys, v[:1], right=True))
            pos = order[lo:hi]
            r, c = pos // in_o, pos % in_o
            hit = (orig[r, c] == v).all(dim=-1)
            found = set(r[hit].tolist())
            rows = found if rows is None else rows & found
        if rows is None or len(rows) != 1:
            return None
        kept.append(rows.pop())
    if any(b <= a for a, b in zip(kept, kept[1:])):
        return None
    return kept
