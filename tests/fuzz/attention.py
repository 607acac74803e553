"""Attention blocks of fuzzed nets, on (B, T, D) tokens.

``Attention`` is hand-written in the styles real code uses: separate or fused q/k/v
projections, heads reshaped with ``self.head_dim`` or ``-1``, and a scale read from
``q.shape[-1]`` (changes with a head-dim cut), stored in ``self.scale``, or left to SDPA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head self-attention, ``dim -> dim``, ``num_heads * head_dim`` inner width."""

    def __init__(
        self, dim: int, num_heads: int, head_dim: int, *, fused: bool, scale_mode: str,
        view_mode: str,
    ) -> None:  # fmt: skip
        super().__init__()
        inner = num_heads * head_dim
        self.num_heads, self.head_dim = num_heads, head_dim
        self.fused, self.scale_mode, self.view_mode = fused, scale_mode, view_mode
        self.scale = head_dim**-0.5
        if fused:
            self.qkv = nn.Linear(dim, 3 * inner)
        else:
            self.q, self.k, self.v = (
                nn.Linear(dim, inner),
                nn.Linear(dim, inner),
                nn.Linear(dim, inner),
            )
        self.o = nn.Linear(inner, dim)

    def _heads(self, t: Tensor, b: int, n: int) -> Tensor:
        if self.view_mode == "attr":
            t = t.view(b, n, self.num_heads, self.head_dim)
        elif self.view_mode == "minus_dim":
            t = t.view(b, n, self.num_heads, -1)
        else:  # minus_heads
            t = t.view(b, n, -1, self.head_dim)
        return t.transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        if self.fused:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        q, k, v = self._heads(q, b, n), self._heads(k, b, n), self._heads(v, b, n)
        if self.scale_mode == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            if self.scale_mode == "shape":
                att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            else:
                att = (q @ k.transpose(-2, -1)) * self.scale
            out = att.softmax(dim=-1) @ v
        return self.o(out.transpose(1, 2).reshape(b, n, -1))

    def extra_repr(self) -> str:
        return (
            f"num_heads={self.num_heads}, head_dim={self.head_dim}, fused={self.fused}, "
            f"scale_mode={self.scale_mode!r}, view_mode={self.view_mode!r}"
        )


class MHA(nn.Module):
    """``nn.MultiheadAttention`` (batch first) as a ``dim -> dim`` self-attention block."""

    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, num_heads, bias=bias, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


class PreNorm(nn.Module):
    """``fn(norm(x))``."""

    def __init__(self, norm: nn.Module, fn: nn.Module) -> None:
        super().__init__()
        self.norm, self.fn = norm, fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(self.norm(x))


class PosEmbed(nn.Module):
    """``x + self.pos`` with a bare ``nn.Parameter`` of shape (1, T, D)."""

    def __init__(self, tokens: int, dim: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pos


class TokenPool(nn.Module):
    """(B, T, D) -> (B, D): mean over tokens, the first token, or all tokens flattened."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "mean":
            return x.mean(dim=1)
        if self.mode == "first":
            return x[:, 0]
        return x.flatten(1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
