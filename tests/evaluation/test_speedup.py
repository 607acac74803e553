"""measure_speedup: two models timed in interleaved blocks, same inputs, same window."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.evaluation import SpeedupReport, measure_speedup


class Recorder(nn.Module):
    """Logs its tag and input batch size into a shared list on every forward."""

    def __init__(self, tag: str, log: list[tuple[str, int]]) -> None:
        super().__init__()
        self.tag, self.log = tag, log
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append((self.tag, x.shape[0]))
        out: torch.Tensor = self.fc(x)
        return out


def _blocks(log: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Runs of consecutive calls by the same model: (tag, length)."""
    out: list[tuple[str, int]] = []
    for tag, _ in log:
        if out and out[-1][0] == tag:
            out[-1] = (tag, out[-1][1] + 1)
        else:
            out.append((tag, 1))
    return out


def test_runs_alternate_in_blocks_after_both_warm_up() -> None:
    log: list[tuple[str, int]] = []
    a, b = Recorder("a", log), Recorder("b", log)
    r = measure_speedup(a, b, torch.zeros(1, 4), batch_size=3, warmup=2, runs=7, rounds=3)
    # warm-up a, b; then blocks of 3, 2, 2 runs in the order A B, B A, A B (adjacent
    # blocks of one model merge: b3 + b2, a2 + a2)
    assert _blocks(log) == [("a", 2), ("b", 2), ("a", 3), ("b", 5), ("a", 4), ("b", 2)]
    assert {n for _, n in log} == {3}
    assert (r.reference.runs, r.candidate.runs, r.rounds) == (7, 7, 3)
    assert r.speedup == pytest.approx(r.reference.median_ms / r.candidate.median_ms)


def test_speedup_restores_modes_and_threads_and_reports_the_form() -> None:
    threads = torch.get_num_threads()
    a = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).train()
    b = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).train()
    r = measure_speedup(a, b, torch.zeros(1, 3, 8, 8), batch_size=2, warmup=1, runs=2,
                        threads=1, deploy=True, rounds=1)  # fmt: skip
    assert a.training and b.training and torch.get_num_threads() == threads
    assert r.reference.form == r.candidate.form == "bn-folded+channels-last"
    assert r.reference.threads == r.candidate.threads == 1
    assert isinstance(r, SpeedupReport) and set(r.to_dict()) == {
        "reference",
        "candidate",
        "speedup",
        "rounds",
    }


@pytest.mark.parametrize("rounds", [0, 5, True, 1.5])
def test_bad_rounds_name_the_value(rounds: object) -> None:
    with pytest.raises(ConfigError, match=r"rounds=.*runs=4"):
        measure_speedup(nn.Linear(2, 2), nn.Linear(2, 2), torch.zeros(1, 2), runs=4,
                        rounds=rounds)  # type: ignore[arg-type]  # fmt: skip
