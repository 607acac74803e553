"""Checkpoints: an interrupted search resumes without re-measuring finished points."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from prunekit.errors import SearchError
from prunekit.search import Budget, SearchResult, Strategy, search


class Killed(RuntimeError):
    """Stands in for the process being killed in the middle of a search."""


class CountingMetric:
    """Validation accuracy that counts its calls and can 'die' on call ``die_at``."""

    def __init__(self, accuracy: Callable[[nn.Module], float], die_at: int | None = None) -> None:
        self.accuracy, self.die_at, self.calls = accuracy, die_at, 0

    def __call__(self, model: nn.Module) -> float:
        self.calls += 1
        if self.calls == self.die_at:
            raise Killed(f"killed during metric call {self.calls}")
        return self.accuracy(model)


def _run(
    trained: nn.Module, digits: Any, recover: Any, metric: Any, ck: Path | None, **kw: Any
) -> SearchResult:
    strategies = [Strategy(), Strategy(scope="local")]
    return search(trained, digits.xt[:2], metric=metric, tolerance=0.02, strategies=strategies,
                  after_cut=digits.calibrate, recover=recover, steps=4, checkpoint=ck,
                  progress=False, **kw)  # fmt: skip


def _same_result(a: SearchResult, b: SearchResult) -> None:
    def strip(r: SearchResult) -> list[dict]:
        return [{k: v for k, v in p.to_dict().items() if k != "seconds"} for p in r.points]

    assert strip(a) == strip(b)
    assert a.best.index == b.best.index and a.plan.to_dict() == b.plan.to_dict()
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_interrupted_search_resumes_and_matches_an_uninterrupted_one(
    trained: nn.Module, digits: Any, recover: Any, tmp_path: Path
) -> None:
    full_metric = CountingMetric(digits.accuracy)
    full = _run(trained, digits, recover, full_metric, tmp_path / "full")
    # baseline + every point that was not a duplicate cut, measured before and after recover
    # (guard_recover); the second measurement is the point's metric
    total = full_metric.calls
    measured = sum(p.duplicate_of is None for p in full.points)
    assert total == 1 + 2 * measured and measured >= 5

    ck = tmp_path / "resumable"
    dying = CountingMetric(digits.accuracy, die_at=8)  # baseline + 3 points, dies in the 4th
    with pytest.raises(Killed):
        _run(trained, digits, recover, dying, ck)
    head = json.loads((ck / "search.json").read_text())
    assert head["baseline"]["metric"] == full.baseline.metric
    records = [json.loads(p.read_text()) for p in sorted((ck / "points").glob("*.json"))]
    done = [r for r in records if r["record"]["point"]["duplicate_of"] is None]
    assert len(done) == 3
    assert (ck / "best_plan.json").exists() and not (ck / "result.json").exists()
    assert not list(ck.rglob("*.tmp"))  # atomic writes leave no temporaries

    again = CountingMetric(digits.accuracy)
    resumed = _run(trained, digits, recover, again, ck)
    assert again.calls == total - 1 - 2 * 3  # no baseline, no finished point measured twice
    _same_result(resumed, full)
    saved = json.loads((ck / "result.json").read_text())
    assert saved["best"]["index"] == full.best.index

    # a finished search resumes entirely from its records; the model is rebuilt by replay
    idle = CountingMetric(digits.accuracy)
    replayed = _run(trained, digits, recover, idle, ck)
    assert idle.calls == 0
    _same_result(replayed, full)
    assert digits.accuracy(replayed.model) == full.best.metric


def test_checkpoint_with_other_settings_is_refused(
    trained: nn.Module, digits: Any, recover: Any, tmp_path: Path
) -> None:
    ck = tmp_path / "ck"
    metric = CountingMetric(digits.accuracy)
    search(trained, digits.xt[:2], metric=metric, budget=Budget(macs=0.5), steps=3,
           checkpoint=ck, progress=False)  # fmt: skip
    with pytest.raises(SearchError, match=r"budget.value: 0.5 -> 0.6.*start fresh"):
        search(trained, digits.xt[:2], metric=metric, budget=Budget(macs=0.6), steps=3,
               checkpoint=ck, progress=False)  # fmt: skip
    with pytest.raises(SearchError, match="recover: null"):
        search(trained, digits.xt[:2], metric=metric, budget=Budget(macs=0.5), steps=3,
               recover=recover, checkpoint=ck, progress=False)  # fmt: skip
    other = type(trained)(*[type(m)(**_init(m)) for m in trained])  # same shapes, new weights
    with pytest.raises(SearchError, match="model"):
        search(other, digits.xt[:2], metric=metric, budget=Budget(macs=0.5), steps=3,
               checkpoint=ck, progress=False)  # fmt: skip
    (ck / "search.json").write_text("{not json")
    with pytest.raises(SearchError, match="cannot be read"):
        search(trained, digits.xt[:2], metric=metric, budget=Budget(macs=0.5), steps=3,
               checkpoint=ck, progress=False)  # fmt: skip


def _init(m: nn.Module) -> dict[str, Any]:
    if isinstance(m, nn.Linear):
        return {"in_features": m.in_features, "out_features": m.out_features}
    if isinstance(m, nn.BatchNorm1d):
        return {"num_features": m.num_features}
    return {}
