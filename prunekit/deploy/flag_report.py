"""The offline view of the disagreement flags: who is flagged, per class, and how well.

Without labels: the flag rate and disagreement rate, the flagged rows' indices (data order),
and both rates per class of the *original's* prediction. With labels, also per true class,
and the flag judged against the pruned model's *new errors* ("newly wrong": the pruned
model is wrong where the original was right): precision (flagged rows that are newly wrong)
and recall (newly wrong rows that are flagged) at the detector's margin, and the
precision/recall curve over flag rates — the rows ranked as the flag ranks them
(disagreements first, then by drop) and the top ``rate * N`` taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from prunekit.errors import ConfigError

__all__ = [
    "DEFAULT_RATES",
    "ClassRates",
    "FlagReport",
    "FlagScores",
    "PRPoint",
    "flag_report",
    "pr_curve",
]

DEFAULT_RATES: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


@dataclass
class FlagScores:
    """Both models over a dataset, row by row (data order).

    Attributes:
        disagree, drop: As in :func:`.flags.disagreement_scores`. pred, reference_pred: The
            pruned and original classes. targets: The labels, or ``None``.
    """

    disagree: torch.Tensor
    drop: torch.Tensor
    pred: torch.Tensor
    reference_pred: torch.Tensor
    targets: torch.Tensor | None

    def flags(self, margin: float) -> torch.Tensor:
        """Rows flagged at ``margin``: disagreement or ``drop > margin``."""
        return self.disagree | (self.drop > margin)


@dataclass(frozen=True)
class PRPoint:
    """The top ``flagged`` rows (``rate`` of them) as flags: precision and recall against
    the newly wrong rows (``None`` when there are none); ``ceiling`` is the best recall any
    flag of that many rows could reach (``flagged / newly wrong``, at most 1)."""

    rate: float
    flagged: int
    precision: float | None
    recall: float | None
    ceiling: float | None = None


@dataclass(frozen=True)
class ClassRates:
    """One class: its rows, the share the models disagree on, the share flagged."""

    cls: int
    n: int
    disagreement_rate: float
    flag_rate: float


@dataclass
class FlagReport:
    """See the module doc. ``precision``/``recall``/``newly_wrong*``/``per_true_class``/
    ``pr_curve`` are filled only when the data carry labels."""

    n: int
    score: str
    margin: float
    flag_rate: float
    disagreement_rate: float
    flagged_indices: list[int]
    per_class: list[ClassRates]
    labelled: bool = False
    newly_wrong: int | None = None
    newly_wrong_indices: list[int] = field(default_factory=list)
    precision: float | None = None
    recall: float | None = None
    per_true_class: list[ClassRates] = field(default_factory=list)
    pr_curve: list[PRPoint] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (an infinite margin is written as a string)."""
        out = asdict(self)
        out["margin"] = self.margin if abs(self.margin) != float("inf") else str(self.margin)
        return out

    def curve_table(self) -> str:
        """The precision/recall curve as a Markdown table."""
        rows = [
            "| flag rate | flagged | precision | recall of new errors | best possible recall |",
            "|---|---|---|---|---|",
        ]
        for p in self.pr_curve:
            prec = "-" if p.precision is None else f"{p.precision:.3f}"
            rec = "-" if p.recall is None else f"{p.recall:.3f}"
            top = "-" if p.ceiling is None else f"{p.ceiling:.3f}"
            rows.append(f"| {p.rate:.2f} | {p.flagged} | {prec} | {rec} | {top} |")
        return "\n".join(rows)


def _ranking(disagree: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Rows in flag order: disagreements first, then by drop (largest first), stable."""
    key = disagree.double() * 1e6 + drop.double().clamp(-1e5, 1e5)
    return torch.sort(key, descending=True, stable=True).indices


def pr_curve(
    disagree: torch.Tensor, drop: torch.Tensor, newly_wrong: torch.Tensor, rates: Sequence[float]
) -> list[PRPoint]:
    """Precision and recall of the top ``rate * N`` ranked rows against ``newly_wrong``.

    Example:
        >>> d = torch.tensor([True, False, False, False])
        >>> wrong = torch.tensor([True, False, True, False])
        >>> [(p.flagged, p.precision, p.recall)
        ...  for p in pr_curve(d, torch.tensor([0.0, 0.1, 0.5, 0.2]), wrong, [0.25, 0.5])]
        [(1, 1.0, 0.5), (2, 1.0, 1.0)]
    """
    for r in rates:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
            raise ConfigError(f"rates holds {r!r}; every flag rate must be in (0, 1]")
    order = _ranking(disagree, drop)
    hits = torch.cumsum(newly_wrong[order].long(), 0)
    total = int(newly_wrong.sum())
    n = int(disagree.numel())
    points = []
    for r in rates:
        k = max(1, min(n, int(r * n + 0.5)))
        got = int(hits[k - 1])
        ceiling = min(1.0, k / total) if total else None
        points.append(PRPoint(float(r), k, got / k, got / total if total else None, ceiling))
    return points


def _per_class(
    classes: torch.Tensor, disagree: torch.Tensor, flags: torch.Tensor
) -> list[ClassRates]:
    out = []
    for c in torch.unique(classes).tolist():
        rows = classes == c
        out.append(
            ClassRates(
                int(c),
                int(rows.sum()),
                float(disagree[rows].double().mean()),
                float(flags[rows].double().mean()),
            )
        )
    return out


def flag_report(
    got: FlagScores, *, margin: float, score: str, rates: Sequence[float] | None = None
) -> FlagReport:
    """The report (see the module doc) of the flags at ``margin`` on recorded scores (what
    :meth:`~prunekit.deploy.DisagreementDetector.analyze` returns)."""
    flags = got.flags(margin)
    report = FlagReport(
        n=int(flags.numel()),
        score=score,
        margin=margin,
        flag_rate=float(flags.double().mean()),
        disagreement_rate=float(got.disagree.double().mean()),
        flagged_indices=torch.nonzero(flags).flatten().tolist(),
        per_class=_per_class(got.reference_pred, got.disagree, flags),
    )
    if got.targets is None:
        return report
    wrong = (got.pred != got.targets) & (got.reference_pred == got.targets)
    total, caught = int(wrong.sum()), int((wrong & flags).sum())
    report.labelled = True
    report.newly_wrong = total
    report.newly_wrong_indices = torch.nonzero(wrong).flatten().tolist()
    report.precision = caught / int(flags.sum()) if bool(flags.any()) else None
    report.recall = caught / total if total else None
    report.per_true_class = _per_class(got.targets, got.disagree, flags)
    report.pr_curve = pr_curve(got.disagree, got.drop, wrong, rates or DEFAULT_RATES)
    return report
