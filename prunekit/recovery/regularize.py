"""Sparsity regularisers that prepare a model for pruning: pass one as
``finetune(..., regularizer=...)``, train a few epochs, then prune.

- :class:`BNScaleL1` (Network Slimming, Liu et al. 2017): ``strength * sum |gamma|`` over every
  batch/instance-norm scale (role ``"norm_scale"``, the scales the ``"bn_scale"`` criterion
  reads), so channels the network can spare get a near-zero scale (and a low ``"bn_scale"``
  importance).
- :class:`GroupLasso` (Yuan & Lin 2006; Wen et al. 2016): ``strength * sum_u ||W_u||_2`` where
  ``W_u`` gathers every parameter slice that belongs to unit ``u`` of a dependency group (the
  same slices structured pruning removes together), so whole units are driven to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import ConfigError
from ..surgery import role_of

if TYPE_CHECKING:
    from ..graph import DependencyGraph

__all__ = ["BNScaleL1", "GroupLasso"]

_EPS = 1e-12  # inside the square root: a finite gradient for units already at zero


def _check_strength(owner: str, strength: float) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or strength < 0:
        raise ConfigError(f"{owner} strength={strength!r} must be a number >= 0, e.g. 1e-4")
    return float(strength)


def _unwrap(model: nn.Module) -> nn.Module:
    """The inner model of a ``DistributedDataParallel``-style wrapper (else ``model``)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


@dataclass
class BNScaleL1:
    """L1 penalty on norm scales: ``strength * sum |gamma|`` (Network Slimming).

    The scales are the affine weights with role ``"norm_scale"`` (batch and instance norms;
    see :data:`prunekit.surgery.ROLES`), the ones the ``"bn_scale"`` criterion ranks by.

    Args:
        strength: the penalty weight (the paper uses 1e-4 to 1e-5).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 1), torch.nn.BatchNorm2d(3))
        >>> _ = torch.nn.init.constant_(net[1].weight, -2.0)
        >>> BNScaleL1(0.5)(net).item()  # 0.5 * (2 + 2 + 2)
        3.0
    """

    strength: float = 1e-4

    def __post_init__(self) -> None:
        self.strength = _check_strength("BNScaleL1", self.strength)

    def __call__(self, model: nn.Module) -> torch.Tensor:
        """The penalty for ``model`` (a scalar tensor; 0 when it has no affine BatchNorm)."""
        terms = [
            w.abs().sum()
            for m in model.modules()
            if isinstance(w := m._parameters.get("weight"), nn.Parameter)
            and role_of(m, "weight") == "norm_scale"
        ]
        if not terms:
            return torch.zeros(())
        return self.strength * torch.stack(terms).sum()


class GroupLasso:
    """Group-lasso penalty over the units of a model's dependency groups.

    For every prunable group (from ``prunekit.analyze(model, example_inputs, probe=False)``)
    and every unit ``u`` of it, ``||W_u||_2`` is the L2 norm over all the unit's parameter
    slices in all member tensors (each member's index map says which positions of which dim
    the unit owns); the penalty is ``strength`` times the sum over units of all groups.

    Args:
        model: the model to regularise, or its already computed ``DependencyGraph``.
        example_inputs: inputs to trace ``model`` with (not needed for a graph).
        strength: the penalty weight.

    Attributes:
        num_units_: the number of units penalised.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3, bias=False), torch.nn.ReLU(),
        ...                           torch.nn.Linear(3, 1, bias=False))
        >>> _ = torch.nn.init.constant_(net[0].weight, 1.0)
        >>> _ = torch.nn.init.constant_(net[2].weight, 2.0)
        >>> lasso = GroupLasso(net, torch.randn(1, 2), strength=1.0)
        >>> round(lasso(net).item(), 4)  # 3 hidden units, each sqrt(1 + 1 + 4)
        7.3485
    """

    def __init__(
        self,
        model: nn.Module | DependencyGraph,
        example_inputs: Any = None,
        strength: float = 1e-4,
    ) -> None:
        from ..analysis import analyze  # lazy: keeps prunekit.recovery free of import cycles
        from ..graph import DependencyGraph

        self.strength = _check_strength("GroupLasso", strength)
        if isinstance(model, DependencyGraph):
            graph = model
        elif isinstance(model, nn.Module):
            if example_inputs is None:
                raise ConfigError(
                    "GroupLasso(model) needs example_inputs to trace the model's dependency "
                    "groups, e.g. GroupLasso(model, torch.randn(1, 3, 32, 32), strength=1e-4)"
                )
            graph = analyze(_unwrap(model), example_inputs, probe=False)
        else:
            raise ConfigError(
                "GroupLasso takes an nn.Module (with example_inputs) or a DependencyGraph, got "
                f"{type(model).__name__}"
            )
        # per group: (parameter name, dim, size of that dim, [units, positions] index tensor)
        self._groups = [
            [
                (m.name, m.dim, graph.tensors[m.name].shape[m.dim], torch.as_tensor(m.indices))
                for m in g.members
                if m.is_param
            ]
            for g in graph.groups
        ]
        self._groups = [g for g in self._groups if g]
        self.num_units_ = sum(len(g[0][3]) for g in self._groups)

    def unit_norms(self, model: nn.Module) -> list[torch.Tensor]:
        """Per group, the ``[num_units]`` L2 norms (differentiable)."""
        params = dict(_unwrap(model).named_parameters())
        out = []
        for members in self._groups:
            sq: torch.Tensor | None = None
            for name, dim, size, idx in members:
                p = params.get(name)
                if p is None or p.shape[dim] != size:
                    raise ConfigError(
                        f"GroupLasso: the model has no parameter {name!r} with {size} entries "
                        f"along dim {dim} (it was traced from another model, or pruned since); "
                        "build the GroupLasso on the model you train"
                    )
                rows = p.movedim(dim, 0)[
                    idx.to(device=p.device, dtype=torch.long)
                ]  # [units, positions, ...]
                part = rows.float().pow(2).reshape(idx.shape[0], -1).sum(1)
                sq = part if sq is None else sq + part
            assert sq is not None  # every kept group has a parameter member
            out.append(torch.sqrt(sq + _EPS))
        return out

    def __call__(self, model: nn.Module) -> torch.Tensor:
        """The penalty for ``model`` (a scalar tensor)."""
        norms = self.unit_norms(model)
        if not norms:
            return torch.zeros(())
        return self.strength * torch.cat(norms).sum()
