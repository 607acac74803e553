"""Ensembles of (pruned) models: combine, prune every member with its own plan, evaluate.

- :class:`Ensemble`: ``combine="mean"`` averages the members' logits (weighted);
  ``combine="vote"`` returns each class's (weighted) share of the members' top-1 votes, so
  its argmax is the majority class (a tie goes to the lowest class index).
- :func:`prune_ensemble`: :func:`prunekit.prune` on every member with the shared options
  plus the member's own (a different criterion, ratio or ``RandomImportance(seed=...)``).
- :func:`evaluate_ensemble`: accuracy and MACs per input of the ensemble, of each member
  alone and of any other models (an unpruned ensemble, one unpruned member at the same total
  MACs ...), in one table.

Greedy member selection under a MACs budget is in :mod:`.selection`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.errors import ConfigError, DataError
from prunekit.result import PruneResult

from ._rows import as_inputs, data_batches, logits_of, macs_per_row
from .confidence import class_logits

__all__ = [
    "COMBINE",
    "Ensemble",
    "EnsemblePruning",
    "EnsembleReport",
    "ModelRow",
    "combine_outputs",
    "evaluate_ensemble",
    "prune_ensemble",
]

COMBINE: tuple[str, ...] = ("mean", "vote")


def _check_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0] * count
    values = list(weights)
    bad = [w for w in values if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0]
    if len(values) != count or bad or sum(values) <= 0:
        raise ConfigError(
            f"weights={values!r} must be {count} numbers >= 0 (one per member) with a "
            "positive sum, or None for equal weights"
        )
    return [float(w) for w in values]


def combine_outputs(
    outputs: Sequence[torch.Tensor],
    *,
    combine: str = "mean",
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """The ensemble output of members' logits ``(N, C)`` each (see the module doc).

    Example:
        >>> a, b, c = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 3.0]])
        >>> (combine_outputs([a, b, c]) * 3).round().tolist()  # mean of logits
        [[2.0, 4.0]]
        >>> (combine_outputs([a, b, c], combine="vote") * 3).round().tolist()  # 1 vote, 2 votes
        [[1.0, 2.0]]
    """
    if combine not in COMBINE:
        raise ConfigError(
            f"combine={combine!r} is not a way to combine; use one of {list(COMBINE)}"
        )
    if not outputs:
        raise ConfigError("combine_outputs got no member outputs; pass at least one")
    w = _check_weights(weights, len(outputs))
    logits = [class_logits(o).float() for o in outputs]
    shapes = {tuple(o.shape) for o in logits}
    if len(shapes) != 1:
        raise DataError(
            f"the members return logits of shapes {sorted(shapes)}; every member must score "
            "the same classes for the same rows"
        )
    total = sum(w)
    if combine == "mean":
        return sum(wi * o for wi, o in zip(w, logits)) / total  # type: ignore[return-value]
    votes = torch.zeros_like(logits[0])
    for wi, o in zip(w, logits):
        votes.scatter_add_(1, o.argmax(1, keepdim=True), torch.full_like(o[:, :1], wi))
    return votes / total


class Ensemble(nn.Module):
    """Members run on the same inputs, their logits combined.

    Args:
        members: The models (same classes).
        combine: ``"mean"`` of logits, or ``"vote"`` (see the module doc).
        weights: One weight >= 0 per member (``None``: equal).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> ens = Ensemble([nn.Linear(4, 3), nn.Linear(4, 3)], combine="vote")
        >>> ens(torch.randn(5, 4)).sum(dim=1).tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0]
    """

    def __init__(
        self,
        members: Sequence[nn.Module],
        *,
        combine: str = "mean",
        weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(members, nn.Module) or not isinstance(members, Sequence) or not members:
            raise ConfigError(f"members={members!r} must be a non-empty list of nn.Module")
        bad = [i for i, m in enumerate(members) if not isinstance(m, nn.Module)]
        if bad:
            raise ConfigError(
                f"member {bad[0]} is a {type(members[bad[0]]).__name__}; pass nn.Module members"
            )
        if combine not in COMBINE:
            raise ConfigError(
                f"combine={combine!r} is not a way to combine; use one of {list(COMBINE)}"
            )
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.weights = _check_weights(weights, len(members))

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The combined logits (mean) or vote shares (vote) of the members."""
        inputs = as_inputs(args, kwargs)
        outs = [logits_of(m, inputs, f"member {i}'s output") for i, m in enumerate(self.members)]
        return combine_outputs(outs, combine=self.combine, weights=self.weights)

    def extra_repr(self) -> str:
        return f"combine={self.combine!r}, weights={self.weights}"


@dataclass
class EnsemblePruning:
    """The pruned ensemble and every member's :class:`~prunekit.PruneResult` (plans)."""

    ensemble: Ensemble
    results: list[PruneResult]


def prune_ensemble(
    members: Sequence[nn.Module],
    example_inputs: Any,
    *,
    member_options: Sequence[Mapping[str, Any]] | None = None,
    combine: str = "mean",
    **options: Any,
) -> EnsemblePruning:
    """Prune every member with :func:`prunekit.prune` (shared ``options`` plus its own).

    Args:
        members: The unpruned models (not modified).
        example_inputs: Their example inputs.
        member_options: One dict of :func:`prunekit.prune` keywords per member, e.g.
            ``[{"importance": "l2"}, {"importance": "fpgm"}, {"importance": "taylor", ...}]``;
            they win over ``options``.
        combine: How the pruned ensemble combines its members.
        **options: Keywords shared by every member (e.g. ``target_macs=0.33``).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> make = lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> out = prune_ensemble([make(), make()], torch.randn(2, 4), ratio=0.5,
        ...                      member_options=[{"importance": "l1"}, {"importance": "l2"}])
        >>> [r.model[0].out_features for r in out.results]
        [4, 4]
    """
    from prunekit.api import prune

    if member_options is None:
        member_options = [{} for _ in members]
    if len(member_options) != len(members):
        raise ConfigError(
            f"member_options has {len(member_options)} entries for {len(members)} members; "
            "pass one dict per member (an empty dict uses the shared options)"
        )
    results = []
    for i, (member, own) in enumerate(zip(members, member_options)):
        if not isinstance(own, Mapping):
            raise ConfigError(f"member_options[{i}] is a {type(own).__name__}; pass a dict")
        result = prune(member, example_inputs, **{**options, **own})
        if not isinstance(result, PruneResult):
            raise ConfigError(
                f"member {i} was pruned at weight level ({type(result).__name__}); an ensemble "
                "of structured cuts needs granularity='structured'"
            )
        results.append(result)
    return EnsemblePruning(Ensemble([r.model for r in results], combine=combine), results)


@dataclass(frozen=True)
class ModelRow:
    """One model of the comparison: accuracy, MACs per input and parameters."""

    name: str
    accuracy: float
    macs_per_input: float
    params: int


@dataclass
class EnsembleReport:
    """The ensemble, its members and the other models, on the same data."""

    n: int
    rows: list[ModelRow] = field(default_factory=list)

    def row(self, name: str) -> ModelRow:
        """The row called ``name`` (KeyError-free: ConfigError lists the names)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise ConfigError(f"no row {name!r}; rows: {[r.name for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)

    def table(self) -> str:
        """A Markdown table: model, accuracy, MACs per input, parameters."""
        lines = ["| model | accuracy | MACs / input | params |", "|---|---|---|---|"]
        lines += [
            f"| {r.name} | {100 * r.accuracy:.2f}% | {r.macs_per_input:,.0f} | {r.params:,} |"
            for r in self.rows
        ]
        return "\n".join(lines)


def evaluate_ensemble(
    ensemble: Ensemble,
    data: Iterable[Any],
    *,
    others: Mapping[str, nn.Module] | None = None,
    name: str = "ensemble",
) -> EnsembleReport:
    """Accuracy and MACs per input of ``ensemble``, each member, and ``others`` (by name).

    The ensemble's MACs are its members' summed (the combination is element-wise).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> data = [(torch.randn(8, 4), torch.randint(0, 3, (8,)))]
        >>> rep = evaluate_ensemble(Ensemble([nn.Linear(4, 3)] * 2), data)
        >>> [r.name for r in rep.rows], rep.row("ensemble").macs_per_input
        (['member 0', 'member 1', 'ensemble'], 24.0)
    """
    others = dict(others or {})
    bad = [k for k, m in others.items() if not isinstance(m, nn.Module)]
    if bad:
        raise ConfigError(f"others[{bad[0]!r}] is not an nn.Module; pass {{name: model}}")
    models = [*ensemble.members, *others.values()]
    preds: list[list[torch.Tensor]] = [[] for _ in range(len(models) + 1)]
    targets: list[torch.Tensor] = []
    macs: list[float] = []
    with torch.inference_mode():
        for inputs, target in data_batches(data, "evaluate_ensemble"):
            if target is None:
                raise DataError("evaluate_ensemble needs labels; yield (inputs, labels) batches")
            if not macs:
                macs = [macs_per_row(m, inputs) for m in models]
            outs = [logits_of(m, inputs, "a model's output") for m in models]
            members = outs[: len(ensemble.members)]
            combined = combine_outputs(members, combine=ensemble.combine, weights=ensemble.weights)
            for k, o in enumerate([*outs, combined]):
                preds[k].append(class_logits(o).argmax(1).cpu())
            targets.append(target)
    labels = torch.cat(targets)
    acc = [float((torch.cat(p) == labels).double().mean()) for p in preds]
    count = len(ensemble.members)
    names = [f"member {i}" for i in range(count)]
    report = EnsembleReport(int(labels.numel()))
    for i in range(count):
        report.rows.append(ModelRow(names[i], acc[i], macs[i], _params(models[i])))
    report.rows.append(ModelRow(name, acc[-1], sum(macs[:count]), _params(ensemble)))
    for j, key in enumerate(others):
        k = count + j
        report.rows.append(ModelRow(key, acc[k], macs[k], _params(models[k])))
    return report


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
