"""The building blocks of fuzzed nets: small DAG modules, generic over the channel dim.

Every block maps one tensor to one tensor; the generators (``gen_conv``, ``gen_seq``) nest
them into random DAGs with consistent shapes. Splitters come in three flavours so that a
cut can (attribute sizes) or cannot (sizes written as literals in the code) follow them.
"""

from __future__ import annotations

import linecache
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Residual(nn.Module):
    """``post(body(x) + proj(x))``; ``proj`` is the identity when it is ``None``."""

    def __init__(self, body: nn.Module, proj: nn.Module | None, post: nn.Module) -> None:
        super().__init__()
        self.body, self.proj, self.post = body, proj, post

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.proj is None else self.proj(x)
        return self.post(self.body(x) + skip)


class Concat(nn.Module):
    """``cat([branch(x) for branch in branches], dim)``; a ``None`` branch is ``x`` itself."""

    def __init__(self, branches: list[nn.Module | None], dim: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList([nn.Identity() if b is None else b for b in branches])
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([b(x) for b in self.branches], dim=self.dim)


class AddBranches(nn.Module):
    """``post(sum(branch(x) for branch in branches))``."""

    def __init__(self, branches: list[nn.Module], post: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.post = post

    def forward(self, x: Tensor) -> Tensor:
        out = self.branches[0](x)
        for b in self.branches[1:]:
            out = out + b(x)
        return self.post(out)


class SplitAttr(nn.Module):
    """``torch.split(h, self.split_sizes, dim)``: sizes live in an attribute."""

    def __init__(self, sizes: list[int], dim: int, method: bool) -> None:
        super().__init__()
        self.split_sizes = list(sizes)
        self.dim, self.method = dim, method

    def forward(self, h: Tensor) -> tuple[Tensor, ...]:
        if self.method:
            return tuple(h.split(self.split_sizes, dim=self.dim))
        return tuple(torch.split(h, self.split_sizes, dim=self.dim))

    def extra_repr(self) -> str:
        return f"split_sizes={self.split_sizes}, dim={self.dim}"


class SplitSizeAttr(nn.Module):
    """``torch.split(h, self.split_size, dim)`` with one int: equal pieces, the last smaller."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.split_size, self.dim = size, dim

    def forward(self, h: Tensor) -> tuple[Tensor, ...]:
        return tuple(torch.split(h, self.split_size, dim=self.dim))

    def extra_repr(self) -> str:
        return f"split_size={self.split_size}, dim={self.dim}"


class Chunk(nn.Module):
    """``h.chunk(self.chunks, dim)`` (unequal pieces when the size is not divisible)."""

    def __init__(self, chunks: int, dim: int) -> None:
        super().__init__()
        self.chunks, self.dim = chunks, dim

    def forward(self, h: Tensor) -> tuple[Tensor, ...]:
        return tuple(h.chunk(self.chunks, dim=self.dim))

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, dim={self.dim}"


_LITERAL_CLASSES: dict[tuple[tuple[int, ...], int], type] = {}


def literal_splitter(sizes: list[int], dim: int) -> nn.Module:
    """A module whose forward is ``torch.split(h, [a, b, ...], dim=d)`` written as literals.

    The class is compiled from source (registered in ``linecache`` so that ``inspect``
    finds it), one class per (sizes, dim).
    """
    key = (tuple(sizes), dim)
    if key not in _LITERAL_CLASSES:
        name = "SplitLiteral_" + "_".join(map(str, sizes)) + f"_d{dim}".replace("-", "m")
        filename = f"<fuzz-{name}>"
        src = (
            f"class {name}(nn.Module):\n"
            f"    def forward(self, h):\n"
            f"        return tuple(torch.split(h, {list(sizes)}, dim={dim}))\n"
        )
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
        namespace: dict[str, Any] = {"nn": nn, "torch": torch}
        exec(compile(src, filename, "exec"), namespace)
        cls = namespace[name]
        cls.__module__ = __name__
        _LITERAL_CLASSES[key] = cls
    return _LITERAL_CLASSES[key]()  # type: ignore[no-any-return]


class SplitMerge(nn.Module):
    """Split ``pre(x)`` into parts, transform, merge, ``post``.

    Modes: ``"csp"`` cat(p0, f0(p1)); ``"c2f"`` cat(p0, p1, f0(p1), f1(f0(p1)) ...);
    ``"each"`` cat(f_i(p_i)); ``"swap"`` cat(reversed f_i(p_i)); ``"sum"`` sum f_i(p_i)
    (equal parts); ``"addback"`` p0 + cat(f_i(p1)) (the f_i outputs sum to len(p0)).
    """

    def __init__(
        self, pre: nn.Module, splitter: nn.Module, bodies: list[nn.Module], mode: str,
        post: nn.Module, dim: int,
    ) -> None:  # fmt: skip
        super().__init__()
        self.pre, self.splitter, self.post = pre, splitter, post
        self.bodies = nn.ModuleList(bodies)
        self.mode, self.dim = mode, dim

    def forward(self, x: Tensor) -> Tensor:
        parts = self.splitter(self.pre(x))
        fs = list(self.bodies)
        if self.mode == "csp":
            out = torch.cat([parts[0], fs[0](parts[1])], dim=self.dim)
        elif self.mode == "c2f":
            ys = list(parts)
            for f in fs:
                ys.append(f(ys[-1]))
            out = torch.cat(ys, dim=self.dim)
        elif self.mode in ("each", "swap"):
            ys = [f(p) for f, p in zip(fs, parts, strict=True)]
            out = torch.cat(ys[::-1] if self.mode == "swap" else ys, dim=self.dim)
        elif self.mode == "sum":
            out = fs[0](parts[0])
            for f, p in zip(fs[1:], parts[1:], strict=True):
                out = out + f(p)
        else:  # addback
            out = parts[0] + torch.cat([f(parts[1]) for f in fs], dim=self.dim)
        return self.post(out)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, dim={self.dim}"


class Gate(nn.Module):
    """Squeeze-excitation: ``x * sigmoid(fc2(act(fc1(mean of x over its other dims))))``.

    ``channel_dim`` 1 (conv nets, fc are 1x1 convs when ``conv_fc``) or -1 (sequences).
    """

    def __init__(self, fc1: nn.Module, fc2: nn.Module, act: nn.Module, channel_dim: int,
                 conv_fc: bool) -> None:  # fmt: skip
        super().__init__()
        self.fc1, self.fc2, self.act = fc1, fc2, act
        self.channel_dim, self.conv_fc = channel_dim, conv_fc

    def forward(self, x: Tensor) -> Tensor:
        if self.conv_fc:  # 1x1 convs on a (B, C, 1, ...) pooled map
            s = x.mean(dim=tuple(range(2, x.dim())), keepdim=True)
            return x * torch.sigmoid(self.fc2(self.act(self.fc1(s))))
        if self.channel_dim == 1:
            s = x.mean(dim=tuple(range(2, x.dim())))
            g = torch.sigmoid(self.fc2(self.act(self.fc1(s))))
            return x * g.view(g.shape[0], g.shape[1], *([1] * (x.dim() - 2)))
        s = x.mean(dim=1)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(s))))[:, None, :]


class Shared(nn.Module):
    """One module called twice: ``f(act(f(x)))`` or ``f(x) + f(act(x))``."""

    def __init__(self, f: nn.Module, act: nn.Module, style: str) -> None:
        super().__init__()
        self.f, self.act, self.style = f, act, style

    def forward(self, x: Tensor) -> Tensor:
        if self.style == "chain":
            return self.f(self.act(self.f(x)))
        return self.f(x) + self.f(self.act(x))

    def extra_repr(self) -> str:
        return f"style={self.style!r}"


class Glu(nn.Module):
    """``glu(lin(x), dim)`` through ``F.glu`` or ``nn.GLU``."""

    def __init__(self, lin: nn.Module, dim: int, functional: bool) -> None:
        super().__init__()
        self.lin, self.dim, self.functional = lin, dim, functional
        self.glu = nn.GLU(dim=dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.lin(x)
        return F.glu(h, dim=self.dim) if self.functional else self.glu(h)


class ChannelsLast(nn.Module):
    """Run ``inner`` on (B, L, C) tokens of a (B, C, *spatial) map, with a residual."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[0], x.shape[1]
        spatial = x.shape[2:]
        t = x.flatten(2).transpose(1, 2)
        t = t + self.inner(t)
        return t.transpose(1, 2).reshape(b, c, *spatial)


class Transposed(nn.Module):
    """Run a channels-first ``inner`` (Conv1d ...) on (B, T, D) tokens."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x.transpose(1, 2)).transpose(1, 2)
