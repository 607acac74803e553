"""SparseGPT's layer-wise OBS pruning with weight reconstruction (Frantar & Alistarh, 2023).

For a linear layer ``y = W x`` with calibration inputs ``X`` (tokens x features) the
layer-wise problem is ``min ||W X^T - W' X^T||^2`` over sparse ``W'``. Its Hessian is
``H = 2/n X^T X`` (damped: ``+ damp * mean(diag H) * I``, :meth:`GramStats.hessian`); every
output row shares it, so one inverse serves the whole layer. The algorithm of the paper
(and of its reference ``fasterprune``), implemented by :func:`sparsegpt_prune`:

1. ``U = chol(H^-1)`` upper triangular (``H^-1 = U^T U``): row ``i`` of ``U`` divided by
   ``U_ii`` is the OBS update direction after columns ``0..i-1`` are eliminated;
2. the columns are visited left to right in blocks of ``blocksize``; at the start of a
   block (unstructured) or of each group of ``M`` columns (N:M) the mask is chosen by the
   OBS saliency ``w^2 / U_jj^2`` of the *current* (already updated) weights: the lowest
   ``sparsity`` fraction of the block, or the ``M - N`` lowest of every row's ``M`` columns;
3. column ``j``: the weights masked out are set to zero, their error ``(w - q) / U_jj``
   is spread over the remaining columns of the block by ``U_j,j:`` (the OBS update), and
   after the block the accumulated errors update every later column at once (lazy batch
   update).

Work is in float64 (the Hessian's dtype): with ``H`` of a few thousand features the cost is
small next to collecting ``X^T X`` and float32 Cholesky of a poorly conditioned ``H`` is where
SparseGPT implementations lose accuracy. When the Cholesky factorisation fails, the damping
is multiplied by 10 (with a :class:`RuntimeWarning`) up to ``MAX_DAMP``.
"""

from __future__ import annotations

import warnings

import torch

from ..errors import DataError

__all__ = ["MAX_DAMP", "inverse_hessian_factor", "sparsegpt_prune"]

MAX_DAMP = 10.0
"""Largest relative damping tried before :func:`inverse_hessian_factor` gives up."""


def inverse_hessian_factor(gram: torch.Tensor, count: int, *, damp: float) -> torch.Tensor:
    """Upper Cholesky factor ``U`` of ``H^-1`` (``H^-1 = U^T U``) for
    ``H = 2/count * gram + damp * mean(diag) * I`` (float64).

    Features never seen (zero diagonal) get ``H_jj = 1`` as in the reference; their weights
    are zeroed by :func:`sparsegpt_prune`. A failed factorisation retries with ten times
    the damping (warning) until ``MAX_DAMP``.

    Example:
        >>> gram = torch.tensor([[8.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
        >>> u = inverse_hessian_factor(gram, 4, damp=0.0)  # H = diag(4, 1)
        >>> (u.T @ u).diagonal().tolist()  # H^-1
        [0.25, 1.0]
    """
    if count <= 0:
        raise DataError("sparsegpt: no calibration tokens reached this layer; pass calibration")
    h = gram.to(torch.float64) * (2.0 / count)
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    mean_diag = float(h.diagonal().mean())
    level = damp
    while True:
        damped = h + torch.eye(h.shape[0], dtype=h.dtype, device=h.device) * (level * mean_diag)
        chol, info = torch.linalg.cholesky_ex(damped)
        if int(info) == 0:
            # H^-1 = L^-T L^-1 (a triangular solve: torch.cholesky_inverse is 10x slower on
            # a loaded CPU), then its upper factor U (H^-1 = U^T U)
            eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
            linv = torch.linalg.solve_triangular(chol, eye, upper=False)
            upper, info = torch.linalg.cholesky_ex(linv.T @ linv, upper=True)
            if int(info) == 0:
                factor: torch.Tensor = upper
                return factor
        if level >= MAX_DAMP:
            raise DataError(
                f"sparsegpt: the layer Hessian is not positive definite even with damp={level:g}"
                "; the calibration inputs are degenerate (NaN/inf?): check the model in float32"
            )
        new = max(level * 10.0, 1e-4)
        warnings.warn(
            f"sparsegpt: Cholesky failed with damp={level:g}; retrying with damp={new:g}",
            RuntimeWarning,
            stacklevel=2,
        )
        level = new


def _block_mask(w: torch.Tensor, diag: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune mask (True = zero) of one column block: the lowest ``sparsity`` fraction of
    ``w^2 / diag^2`` over the whole block (exact count; ties to the lower flat index)."""
    sal = (w.square() / diag.square()[None, :]).reshape(-1)
    count = int(sparsity * sal.numel() + 1e-9)
    mask = torch.zeros(sal.numel(), dtype=torch.bool, device=w.device)
    if count:
        mask[torch.argsort(sal, stable=True)[:count]] = True
    return mask.reshape(w.shape)


def _prune_block(
    w1: torch.Tensor, u1: torch.Tensor, mask1: torch.Tensor, nm: tuple[int, int] | None
) -> torch.Tensor:
    """OBS elimination of one column block in place; returns the block's scaled errors."""
    err1 = torch.zeros_like(w1)
    diag = u1.diagonal()
    for i in range(w1.shape[1]):
        if nm is not None and i % nm[1] == 0:
            n, m = nm
            sal = w1[:, i : i + m].square() / diag[i : i + m].square()[None, :]
            low = torch.topk(sal, m - n, dim=1, largest=False).indices
            mask1[:, i : i + m].scatter_(1, low, True)
        err = w1[:, i] * mask1[:, i] / diag[i]  # (w - q) / U_ii, q = w with the mask zeroed
        w1[:, i:].addr_(err, u1[i, i:], alpha=-1.0)  # OBS update (one fused rank-1 op)
        w1[:, i].masked_fill_(mask1[:, i], 0.0)  # exact zeros (equal up to rounding)
        err1[:, i] = err
    return err1


def sparsegpt_prune(
    weight: torch.Tensor,
    gram: torch.Tensor,
    count: int,
    *,
    sparsity: float = 0.5,
    nm: tuple[int, int] | None = None,
    damp: float = 0.01,
    blocksize: int = 128,
) -> torch.Tensor:
    """The SparseGPT-pruned and reconstructed copy of ``weight`` (``(out, in)``; same dtype).

    Args:
        weight: The layer's weight; it is not modified.
        gram: ``X^T X`` of the layer's ``count`` calibration inputs (``(in, in)``).
        count: Number of calibration tokens in ``gram``.
        sparsity: Fraction of every column block to zero (ignored when ``nm`` is given).
        nm: ``(N, M)``: keep ``N`` of every ``M`` consecutive input weights of a row.
        damp: Relative damping of the Hessian (``damp * mean(diag H)``).
        blocksize: Columns per lazy-update block (a multiple of ``M`` for N:M).

    Example:
        >>> x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
        >>> w = sparsegpt_prune(torch.ones(2, 8), x.T @ x, 64, nm=(2, 4), blocksize=4)
        >>> (w.reshape(2, 2, 4) != 0).sum(-1).tolist()
        [[2, 2], [2, 2]]
    """
    cols = weight.shape[1]
    if gram.shape != (cols, cols):
        raise DataError(
            f"sparsegpt: weight has {cols} input features but the Gram matrix is "
            f"{tuple(gram.shape)}; accumulate X^T X of this layer's inputs"
        )
    if nm is not None and blocksize % nm[1]:
        blocksize = max(nm[1], blocksize - blocksize % nm[1])
    u = inverse_hessian_factor(gram.to(weight.device), count, damp=damp)
    w = weight.detach().to(torch.float64).clone()
    w[:, gram.diagonal().to(weight.device) == 0] = 0.0
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        u1 = u[i1:i2, i1:i2]
        w1 = w[:, i1:i2].clone()
        if nm is None:
            mask1 = _block_mask(w1, u1.diagonal(), sparsity)
        else:
            mask1 = torch.zeros_like(w1, dtype=torch.bool)
        err1 = _prune_block(w1, u1, mask1, nm)
        w[:, i1:i2] = w1
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
    return w.to(weight.dtype)
