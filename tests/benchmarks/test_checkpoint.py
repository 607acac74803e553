"""--resume: finished (task, seed) pairs are saved and reused only by the same run."""

from __future__ import annotations

import json

import pytest

from benchmarks.compare import runner
from benchmarks.compare.checkpoint import Checkpoint
from benchmarks.compare.config import BenchConfig, RecoverySpec, TaskSpec
from prunekit.errors import ConfigError

_TASK = TaskSpec("t4-x", "mnist1d", "cnn1d", "macs", (2.0,), methods=("pk-l2-local",))
_CFG = BenchConfig("full", (_TASK,), (0, 1, 2), RecoverySpec(), None)


def _key(commit: str = "abc1234") -> dict:
    return {"config": _CFG.to_dict(), "commit": commit}  # tuples inside, as in a real run


def test_finished_seeds_are_saved_and_resumed_without_rerunning(tmp_path, monkeypatch):
    path = tmp_path / "partial-x.json"
    calls: list[int] = []

    def fake_seed_rows(task, cfg, seed, log):
        calls.append(seed)
        if seed == 2:
            raise KeyboardInterrupt  # the run is interrupted during the last seed
        return [{"method": "unpruned", "seed": seed}]

    monkeypatch.setattr(runner, "_seed_rows", fake_seed_rows)
    first = Checkpoint.open(path, _key(), resume=False)
    with pytest.raises(KeyboardInterrupt):
        runner.run_task(_TASK, _CFG, log=lambda _m: None, checkpoint=first)
    assert calls == [0, 1, 2]
    assert sorted(json.loads(path.read_text())["done"]) == ["t4-x|0", "t4-x|1"]

    calls.clear()
    monkeypatch.setattr(runner, "_seed_rows", lambda t, c, seed, log: calls.append(seed) or [])
    again = Checkpoint.open(path, _key(), resume=True)
    rows = runner.run_task(_TASK, _CFG, log=lambda _m: None, checkpoint=again)
    assert calls == [2]  # only the unfinished seed runs again
    assert rows == [{"method": "unpruned", "seed": 0}, {"method": "unpruned", "seed": 1}]
    again.finish()
    assert not path.exists()


def test_without_resume_a_stale_checkpoint_is_ignored(tmp_path):
    path = tmp_path / "partial-x.json"
    Checkpoint.open(path, _key(), resume=False).save("t4-x", 0, [{"a": 1}], elapsed_s=1.0)
    fresh = Checkpoint.open(path, _key(), resume=False)
    assert fresh.rows("t4-x", 0) is None and fresh.elapsed_s == 0.0


def test_resume_refuses_another_commit_or_uncommitted_code(tmp_path):
    path = tmp_path / "partial-x.json"
    Checkpoint.open(path, _key(), resume=False).save("t4-x", 0, [], elapsed_s=3.0)
    assert Checkpoint.open(path, _key(), resume=True).elapsed_s == 3.0
    with pytest.raises(ConfigError, match=r"different \['commit'\].*'abc1234'.*'def5678'"):
        Checkpoint.open(path, _key("def5678"), resume=True)
    dirty = tmp_path / "partial-d.json"
    Checkpoint.open(dirty, _key("abc1234+dirty"), resume=False).save("t4-x", 0, [], elapsed_s=1)
    with pytest.raises(ConfigError, match="uncommitted"):
        Checkpoint.open(dirty, _key("abc1234+dirty"), resume=True)
