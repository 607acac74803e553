"""Least squares on accumulated normal equations, and the OBS algebra built on them.

One solver serves both sides of the layer order: :mod:`prunekit.recovery` refits pruned
layers (:func:`~prunekit.recovery.compensate`), and the set-aware criteria of
:mod:`prunekit.importance` (``reconstruction``, ``obs``) score removals by the error that
refit leaves. Everything is float64 and memory is ``O(d^2)`` whatever the number of rows.

For a layer ``Y = X W^T`` (``W``: ``[out, d]``) and a damped Gram ``H = X^T X + lam I``, the
least-squares refit that drops the input columns ``U`` leaves the error (Optimal Brain
Surgeon, Hassibi & Stork 1993; the structured form of ZipLM / SparseGPT)::

    cost(U) = trace(W_U (H^-1_UU)^-1 W_U^T)         # W_U = W[:, U]
    W'      = W - W_U (H^-1_UU)^-1 (H^-1)_U,:        # the compensating update (W'_U = 0)
    H'^-1   = H^-1 - (H^-1)_:,U (H^-1_UU)^-1 (H^-1)_U,:

and ``H'^-1`` restricted to the kept columns is the inverse of their Gram, so applying
:func:`obs_remove` again is the greedy refit of the next removal.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["NormalEquations", "damped", "inverse", "obs_cost", "obs_costs", "obs_remove"]


def damped(a: torch.Tensor, ridge: float, *, bias: bool = False) -> torch.Tensor:
    """``a + lam I`` with ``lam = ridge * mean(diag(a))`` over the first ``d`` columns (the
    last one, a bias column when ``bias``, is not damped): scale-free damping.

    Example:
        >>> damped(torch.tensor([[2.0, 0.0], [0.0, 4.0]]), 0.5).tolist()
        [[3.5, 0.0], [0.0, 5.5]]
        >>> damped(torch.tensor([[2.0, 0.0], [0.0, 4.0]]), 0.5, bias=True).tolist()
        [[3.0, 0.0], [0.0, 4.0]]
    """
    d = a.shape[0] - int(bias)
    reg = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
    if d:
        reg[:d] = ridge * float(torch.diagonal(a)[:d].mean())
    return a + torch.diag(reg)


def inverse(a: torch.Tensor) -> torch.Tensor:
    """``a^-1`` (batched over leading dims), the pseudo-inverse where ``a`` is singular."""
    try:
        out: torch.Tensor = torch.linalg.inv(a)
    except RuntimeError:  # singular (columns that were already removed, a zero input)
        out = torch.linalg.pinv(a)
    return out


def _inv_block(hinv: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    return inverse(hinv[cols][:, cols])


def obs_costs(w: torch.Tensor, hinv: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """:func:`obs_cost` of each unit alone, vectorised: ``cols`` is ``[units, p]`` (the
    columns each unit owns); returns ``[units]``.

    Example:
        >>> w = torch.tensor([[1.0, 2.0]]).double()
        >>> obs_costs(w, torch.eye(2).double(), torch.tensor([[0], [1]])).tolist()
        [1.0, 4.0]
    """
    idx = cols.to(device=hinv.device, dtype=torch.long)
    blocks = hinv[idx[:, :, None], idx[:, None, :]]  # [units, p, p]
    wu = w[:, idx]  # [out, units, p]
    return torch.einsum("onp,npq,onq->n", wu, inverse(blocks), wu)


def obs_cost(w: torch.Tensor, hinv: torch.Tensor, cols: Sequence[int] | torch.Tensor) -> float:
    """``trace(W_U (H^-1_UU)^-1 W_U^T)``: the squared output error left by the best refit of
    ``Y = X W^T`` without the columns ``U`` (``w``: ``[out, d]``, ``hinv``: ``[d, d]``).

    Example:
        >>> w = torch.tensor([[1.0, 2.0]]).double()
        >>> obs_cost(w, torch.eye(2).double(), [1])   # uncorrelated inputs: ||w_U||^2
        4.0
        >>> hinv = torch.linalg.inv(torch.tensor([[1.0, 0.9], [0.9, 1.0]]).double())
        >>> round(obs_cost(w, hinv, [1]), 4)   # correlated: column 0 takes most of it over
        0.76
    """
    idx = torch.as_tensor(cols, dtype=torch.long, device=hinv.device)
    wu = w[:, idx]
    return float((wu @ _inv_block(hinv, idx) * wu).sum())


def obs_remove(
    w: torch.Tensor, hinv: torch.Tensor, cols: Sequence[int] | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop columns ``U``: the compensated weights (zero at ``U``) and the downdated inverse.

    Example:
        >>> x = torch.tensor([[1.0, 1.0], [1.0, 2.0], [0.0, 1.0]]).double()
        >>> w = torch.tensor([[1.0, 1.0]]).double()
        >>> w2, _ = obs_remove(w, torch.linalg.inv(x.T @ x), [1])
        >>> [round(v, 4) for v in w2[0].tolist()]   # column 0 refit to x @ w^T alone
        [2.5, 0.0]
    """
    idx = torch.as_tensor(cols, dtype=torch.long, device=hinv.device)
    inv = _inv_block(hinv, idx)
    rows = hinv[idx]  # (H^-1)_U,:
    w_new = w - w[:, idx] @ inv @ rows
    w_new[:, idx] = 0.0
    h_new = hinv - rows.T @ inv @ rows
    h_new[idx] = 0.0
    h_new[:, idx] = 0.0
    return w_new, h_new


class NormalEquations:
    """Running ``A = X^T X``, ``B = X^T Y``, ``||Y||^2`` (float64), X with a ones column for bias.

    Example:
        >>> x = torch.randn(50, 3); y = x @ torch.tensor([[1.0], [2.0], [3.0]]) + 0.5
        >>> eq = NormalEquations(bias=True)
        >>> eq.add(x[:20], y[:20]); eq.add(x[20:], y[20:])
        >>> w = eq.solve(ridge=0.0)
        >>> [round(v, 4) for v in w[0].tolist()], round(eq.relative_error(w), 6)
        ([1.0, 2.0, 3.0, 0.5], 0.0)
    """

    def __init__(self, *, bias: bool) -> None:
        self.bias = bias
        self.a: torch.Tensor | None = None
        self.b: torch.Tensor | None = None
        self.yy = 0.0
        self.rows = 0

    def add(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """Accumulate input rows ``x [n, d]`` and target rows ``y [n, out]`` (``None``: only
        the Gram ``A``, as the criteria need)."""
        x = x.detach().double()
        if self.bias:
            x = torch.cat([x, x.new_ones(x.shape[0], 1)], 1)
        a = x.T @ x
        self.a = a if self.a is None else self.a + a
        if y is not None:
            y = y.detach().double()
            b = x.T @ y
            self.b = b if self.b is None else self.b + b
            self.yy += float((y * y).sum())
        self.rows += x.shape[0]

    def _ab(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.a is None or self.b is None:
            raise ValueError("NormalEquations: no rows (with targets) were added")
        return self.a, self.b

    def solve(self, ridge: float) -> torch.Tensor:
        """``[out, d (+1)]`` minimising ``||X W^T - Y||^2 + lam ||W||^2`` (bias not penalised),
        with ``lam = ridge * mean(diag(X^T X))`` so ``ridge`` does not depend on the scale."""
        a, b = self._ab()
        system = damped(a, ridge, bias=self.bias)
        try:
            w = torch.linalg.solve(system, b)
        except RuntimeError:  # singular (e.g. an input that is always zero and ridge=0)
            w = torch.linalg.pinv(system) @ b
        out: torch.Tensor = w.T.contiguous()
        return out

    def relative_error(self, w: torch.Tensor) -> float:
        """``||X W^T - Y||^2 / ||Y||^2`` for ``w`` of shape ``[out, d (+1)]``."""
        a, b = self._ab()
        w = w.to(a)
        sse = float((w @ a * w).sum() - 2.0 * (w * b.T).sum()) + self.yy
        return max(sse, 0.0) / self.yy if self.yy > 0 else 0.0
