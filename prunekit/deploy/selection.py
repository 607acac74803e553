"""Greedy forward ensemble selection under a MACs budget (Caruana et al., ICML 2004).

From a library of candidate models (pruned at several sizes, with several criteria, the
originals ...) the ensemble is grown one pick at a time on validation data: each step adds
the candidate that makes the ensemble's validation accuracy highest, among those whose
addition keeps the ensemble's MACs per input within the budget. With ``replacement=True`` a
candidate may be picked again (its weight grows; it still runs once, so a repeat costs no
MACs). Ties go to the cheaper addition, then to the lower index. Selection stops when no
allowed pick raises the accuracy, or after ``max_steps`` picks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from prunekit.errors import ConfigError, DataError, SearchError

from ._rows import data_batches, logits_of, macs_per_row
from .confidence import class_logits
from .ensemble import COMBINE, Ensemble, combine_outputs

__all__ = ["Selection", "greedy_selection", "select_members"]


@dataclass
class Selection:
    """The picks of a greedy selection.

    Attributes:
        picks: Candidate indices in pick order (repeats with replacement).
        members: The distinct picked candidates, in first-pick order.
        weights: How often each member was picked.
        history: Validation accuracy after each pick.
        macs_per_input: The ensemble's MACs per input (distinct members summed).
        ensemble: The :class:`~prunekit.deploy.Ensemble` (``None`` from
            :func:`greedy_selection`, which sees outputs, not models).
    """

    picks: list[int]
    members: list[int]
    weights: list[int]
    history: list[float]
    macs_per_input: float
    ensemble: Ensemble | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (without the ensemble)."""
        out = asdict(self)
        out.pop("ensemble")
        return out


def _accuracy(scores: torch.Tensor, targets: torch.Tensor) -> float:
    return float((scores.argmax(1) == targets).double().mean())


def _check(costs: Sequence[float], budget: float, combine: str, max_steps: int | None) -> None:
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0:
        raise ConfigError(f"macs_budget={budget!r} must be a positive number of MACs per input")
    if combine not in COMBINE:
        raise ConfigError(
            f"combine={combine!r} is not a way to combine; use one of {list(COMBINE)}"
        )
    if max_steps is not None and (isinstance(max_steps, bool) or max_steps < 1):
        raise ConfigError(f"max_steps={max_steps!r} must be an int >= 1 or None (no limit)")
    if min(costs) > budget:
        raise SearchError(
            f"macs_budget={budget:,.0f} is below the cheapest candidate ({min(costs):,.0f} MACs "
            "per input); raise the budget or add smaller candidates"
        )


def greedy_selection(
    outputs: Sequence[torch.Tensor],
    targets: torch.Tensor,
    costs: Sequence[float],
    *,
    macs_budget: float,
    combine: str = "mean",
    replacement: bool = True,
    max_steps: int | None = None,
) -> Selection:
    """Greedy selection (module doc) on the candidates' validation logits and MACs.

    Example:
        >>> y = torch.tensor([0, 1, 1])
        >>> good = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # 2 of 3 right
        >>> fix = torch.tensor([[0.0, 0.1], [0.0, 1.0], [0.0, 3.0]])   # 2 of 3 right
        >>> sel = greedy_selection([good, fix], y, [1.0, 1.0], macs_budget=2.0)
        >>> sel.picks, sel.history  # the mean of both gets all three right
        ([0, 1], [0.6666666666666666, 1.0])
    """
    if len(outputs) != len(costs) or not outputs:
        raise ConfigError(
            f"{len(outputs)} candidate outputs and {len(costs)} costs; pass one cost per "
            "candidate (at least one)"
        )
    _check(costs, macs_budget, combine, max_steps)
    logits = [class_logits(o).float() for o in outputs]
    counts = [0] * len(logits)
    picks: list[int] = []
    history: list[float] = []
    spent, current = 0.0, -1.0
    while max_steps is None or len(picks) < max_steps:
        best: tuple[float, float, int] | None = None
        for j in range(len(logits)):
            if counts[j] and not replacement:
                continue
            extra = 0.0 if counts[j] else float(costs[j])
            if spent + extra > macs_budget:
                continue
            trial = [c + (i == j) for i, c in enumerate(counts)]
            used = [i for i, c in enumerate(trial) if c]
            scores = combine_outputs([logits[i] for i in used], combine=combine,
                                     weights=[trial[i] for i in used])  # fmt: skip
            key = (-_accuracy(scores, targets), extra, j)
            best = key if best is None or key < best else best
        if best is None or -best[0] <= current:
            break
        current, j = -best[0], best[2]
        spent += best[1]
        counts[j] += 1
        picks.append(j)
        history.append(current)
    members = list(dict.fromkeys(picks))
    return Selection(picks, members, [counts[i] for i in members], history, spent)


def select_members(
    candidates: Sequence[nn.Module],
    val_data: Iterable[Any],
    *,
    macs_budget: float,
    combine: str = "mean",
    replacement: bool = True,
    max_steps: int | None = None,
) -> Selection:
    """Run every candidate on ``val_data`` once, then :func:`greedy_selection`.

    Args:
        candidates: The library of models (same classes).
        val_data: Labelled validation batches ``(inputs, labels)``.
        macs_budget: The ensemble's MACs per input may not exceed this
            (:func:`prunekit.cost.count_macs` per row, distinct members summed).
        combine, replacement, max_steps: See the module doc.

    Returns:
        The :class:`Selection`, with its :class:`~prunekit.deploy.Ensemble`.
    """
    if isinstance(candidates, nn.Module) or not candidates:
        raise ConfigError("candidates must be a non-empty list of nn.Module")
    outs: list[list[torch.Tensor]] = [[] for _ in candidates]
    targets: list[torch.Tensor] = []
    costs: list[float] = []
    with torch.inference_mode():
        for inputs, target in data_batches(val_data, "select_members"):
            if target is None:
                raise DataError("select_members needs labels; yield (inputs, labels) batches")
            if not costs:
                costs = [macs_per_row(m, inputs) for m in candidates]
            for k, m in enumerate(candidates):
                outs[k].append(logits_of(m, inputs, f"candidate {k}'s output").cpu())
            targets.append(target)
    sel = greedy_selection(
        [torch.cat(o) for o in outs],
        torch.cat(targets),
        costs,
        macs_budget=macs_budget,
        combine=combine,
        replacement=replacement,
        max_steps=max_steps,
    )
    sel.ensemble = Ensemble(
        [candidates[i] for i in sel.members], combine=combine, weights=sel.weights
    )
    return sel
