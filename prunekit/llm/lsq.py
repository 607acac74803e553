"""Least-squares compensation of a consumer layer after some of its input channels are cut.

A consumer ``y = x W^T + b`` (``o_proj``, ``down_proj``) keeps the input channels ``K``.
Over the calibration tokens ``X`` (``n x in``) the refit ``[W_K', b']`` minimises

    ``|| X W^T + 1 b^T - (X_K W_K'^T + 1 b'^T) ||_F^2 + mu || Theta - Theta_0 ||_F^2``

with ``Theta = [W_K'^T; b'^T]`` (the ones column gives the bias: it absorbs the removed
channels' mean, so FLAP's bias compensation is the special case ``W_K' = W_K``) and the
damping ``mu = damp * mean(diag(A))`` pulling the solution towards the unchanged weights
``Theta_0 = [W_K^T; b^T]`` rather than towards zero. With ``G = X^T X`` and ``s = X^T 1``
(:class:`~prunekit.llm.criteria.ChannelStats` sums) the normal equations are

    ``A = [[G_KK, s_K], [s_K^T, n]]``,
    ``B = [[G_K: W^T + s_K b^T], [s^T W^T + n b^T]]``,
    ``(A + mu I) Theta = B + mu Theta_0``,

solved in float64 (Cholesky; a least-squares solve if ``A`` is singular). Nothing per token
is kept: only the ``in x in`` Gram matrix of the block's calibration inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DataError
from .criteria import ChannelStats

__all__ = ["LSQ_DAMP", "lsq_refit", "lsq_solution"]

LSQ_DAMP = 0.01
"""Default relative damping of the normal equations (towards the unchanged weights)."""


def lsq_solution(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    keep: torch.Tensor,
    gram: torch.Tensor,
    colsum: torch.Tensor,
    count: int,
    *,
    damp: float = LSQ_DAMP,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The refit ``(W_K', b')`` of the module docstring, float64.

    Args:
        weight: ``(out, in)`` consumer weight.
        bias: ``(out,)`` bias or ``None`` (zero).
        keep: 1-D long tensor of the kept input channels ``K``.
        gram: ``(in, in)`` ``sum_t x_t x_t^T`` over the calibration tokens.
        colsum: ``(in,)`` ``sum_t x_t``.
        count: Number of tokens ``n``.
        damp: Relative damping ``mu / mean(diag(A))`` (``0``: plain least squares).

    Returns:
        ``(out, |K|)`` weight and ``(out,)`` bias.
    """
    if count <= 0:
        raise DataError("lsq_solution: no calibration tokens were accumulated (count=0)")
    w = weight.detach().to(torch.float64).cpu()
    b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.detach().double()
    b = b.cpu()
    g, s = gram.to(torch.float64), colsum.to(torch.float64)
    k = keep.cpu()
    m = k.numel()
    a = torch.empty(m + 1, m + 1, dtype=torch.float64)
    a[:m, :m] = g[k][:, k]
    a[:m, m] = a[m, :m] = s[k]
    a[m, m] = float(count)
    rhs = torch.empty(m + 1, w.shape[0], dtype=torch.float64)
    rhs[:m] = g[k] @ w.T + s[k, None] * b[None, :]
    rhs[m] = s @ w.T + count * b
    theta0 = torch.cat([w[:, k].T, b[None, :]])
    mu = damp * float(a.diagonal().mean())
    if mu > 0:
        a.diagonal().add_(mu)
        rhs += mu * theta0
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        theta = torch.cholesky_solve(rhs, chol)
    else:
        theta = torch.linalg.lstsq(a, rhs).solution
    return theta[:m].T.contiguous(), theta[m].contiguous()


def lsq_refit(
    consumer: nn.Linear, keep: torch.Tensor, stats: ChannelStats, *, damp: float = LSQ_DAMP
) -> None:
    """Overwrite ``consumer.weight[:, keep]`` and its bias (created when absent) with the
    least-squares refit of the module docstring. Call it *before* the other input channels
    are sliced away; ``stats`` must have been built with ``gram=True``."""
    if stats.gram is None:
        raise DataError(
            "lsq_refit: the statistics hold no Gram matrix; build ChannelStats(..., gram=True)"
        )
    w = consumer.weight
    new_w, new_b = lsq_solution(
        w, consumer.bias, keep, stats.gram, stats.sum, stats.count, damp=damp
    )
    if consumer.bias is None:
        consumer.bias = nn.Parameter(torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
    with torch.no_grad():
        w[:, keep.to(w.device)] = new_w.to(dtype=w.dtype, device=w.device)
        consumer.bias.copy_(new_b.to(dtype=w.dtype, device=w.device))
