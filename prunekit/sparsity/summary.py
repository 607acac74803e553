"""How sparse each layer is: zeros per weight, masked or plain."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .parametrize import masks_of
from .targets import weight_of, weight_targets

__all__ = ["LayerSparsity", "SparsitySummary", "sparsity_summary"]


@dataclass
class LayerSparsity:
    """One layer's weight: shape, element count, zeros, and whether a mask holds them."""

    name: str
    shape: list[int]
    numel: int
    zeros: int
    masked: bool

    @property
    def sparsity(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0


@dataclass
class SparsitySummary:
    """Per-layer weight sparsity, the total over those weights, and over every parameter.

    Attributes:
        layers: one :class:`LayerSparsity` per module with a weight of >= 2 dims.
        params: every parameter element of the model (biases and norms included).
        param_zeros: zero elements among them (masked weights counted as zeros).
    """

    layers: list[LayerSparsity] = field(default_factory=list)
    params: int = 0
    param_zeros: int = 0

    @property
    def weight_sparsity(self) -> float:
        """Zeros over all elements of the listed weights."""
        n = sum(la.numel for la in self.layers)
        return sum(la.zeros for la in self.layers) / n if n else 0.0

    @property
    def param_sparsity(self) -> float:
        return self.param_zeros / self.params if self.params else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (each layer with its ``sparsity``)."""
        return {
            "layers": [dict(asdict(la), sparsity=la.sparsity) for la in self.layers],
            "weight_sparsity": self.weight_sparsity,
            "params": self.params,
            "param_zeros": self.param_zeros,
            "param_sparsity": self.param_sparsity,
        }

    def __str__(self) -> str:
        lines = [f"{'layer':40}{'shape':>18}{'zeros':>12}{'sparsity':>10}"]
        for la in self.layers:
            shape = "x".join(map(str, la.shape))
            tag = " (masked)" if la.masked else ""
            lines.append(f"{la.name[:39]:40}{shape:>18}{la.zeros:>12,}{la.sparsity:>10.3f}{tag}")
        lines.append(
            f"weights: {self.weight_sparsity:.3f} sparse; all parameters: "
            f"{self.param_zeros:,}/{self.params:,} zero ({self.param_sparsity:.3f})"
        )
        return "\n".join(lines)


def sparsity_summary(model: nn.Module) -> SparsitySummary:
    """Count the zeros of every weight (through masks when present) and of all parameters.

    Example:
        >>> import torch
        >>> from prunekit.sparsity import prune_weights
        >>> net = prune_weights(torch.nn.Sequential(torch.nn.Linear(4, 4)), 0.5)
        >>> s = sparsity_summary(net)
        >>> s.layers[0].zeros, s.layers[0].masked, s.params, s.param_zeros
        (8, True, 20, 8)
    """
    masked = masks_of(model)
    out = SparsitySummary()
    with torch.no_grad():
        for name, mod in weight_targets(model).items():
            w = weight_of(mod)
            if w is None:
                continue
            zeros = int((w == 0).sum())
            out.layers.append(LayerSparsity(name, list(w.shape), w.numel(), zeros, name in masked))
        for value in _effective_params(model):
            out.params += value.numel()
            out.param_zeros += int((value == 0).sum())
    return out


def _effective_params(model: nn.Module) -> list[torch.Tensor]:
    """Every parameter once, with masked weights read through their masks."""
    suffix = "parametrizations.weight.original"
    out, seen = [], set()
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        owner = None
        if name == suffix:
            owner = model
        elif name.endswith("." + suffix):
            owner = model.get_submodule(name[: -len(suffix) - 1])
        w = weight_of(owner) if owner is not None else None
        out.append(p if w is None else w)
    return out
