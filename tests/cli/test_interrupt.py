"""Ctrl-C during `prunekit prune`: one line naming the stage and the run directory, exit
130, the finished stages kept, and `--resume` continuing from them."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

SLOW_MODEL = """\
import os, time
import torch


class Slow(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc1 = torch.nn.Linear(n_in, 16)
        self.fc2 = torch.nn.Linear(16, n_out)

    def forward(self, x):
        if self.training and os.environ.get("PRUNEKIT_TEST_SLOW_TRAINING"):
            time.sleep(0.5)  # every training step: recovery takes minutes, evaluation is quick
        return self.fc2(torch.relu(self.fc1(x)))


def build(input_shape, num_classes):
    return Slow(input_shape[0], num_classes)
"""

RECIPE = """\
model: {name: 'python:./slow.py:build'}
data: {name: iris, batch_size: 16}
train: {epochs: 0}
prune: {ratio: 0.5}
recovery: {finetune: {epochs: 8}}
evaluation: {latency: false}
"""


def _lines(stream: object) -> queue.Queue[str]:
    """Every line of ``stream`` in a queue, read by a daemon thread."""
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def _cli(tmp_path: Path, *args: str, slow: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "PRUNEKIT_CACHE": str(tmp_path / "cache")}
    env.pop("PRUNEKIT_TEST_SLOW_TRAINING", None)
    if slow:
        env["PRUNEKIT_TEST_SLOW_TRAINING"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "prunekit.cli", *args], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_regression_ctrl_c_keeps_finished_stages_and_resume_continues(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW_MODEL)
    (tmp_path / "r.yaml").write_text(RECIPE)
    run_dir = tmp_path / "run"
    proc = _cli(tmp_path, "prune", "r.yaml", "--out", str(run_dir), slow=True)
    lines, seen = _lines(proc.stderr), []
    deadline = time.monotonic() + 120
    while not any(ln.lstrip("· ").startswith("cut:") for ln in seen):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(seen)
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            continue
    time.sleep(1.0)  # inside the recovery's first training steps
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    time.sleep(0.2)
    while not lines.empty():
        seen.append(lines.get())
    last = seen[-1].strip()
    assert last.startswith("interrupted during recover (finished: evaluate baseline, cut); "
                           f"partial results in {run_dir}"), "".join(seen)  # fmt: skip
    assert last.endswith("resume with: prunekit prune r.yaml --resume")
    assert "Traceback" not in "".join(seen)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["interrupted"] == {"during": "recover", "finished": ["evaluate baseline", "cut"]}
    assert metrics["cut"]["evaluation"]["params"] < metrics["evaluate baseline"]["params"]
    assert (run_dir / ".resume" / "cut" / "model.safetensors").is_file()

    again = _cli(tmp_path, "prune", "r.yaml", "--out", str(run_dir), "--resume", "--json",
                 slow=False)  # fmt: skip
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "resumed: reused evaluate baseline, cut" in " ".join(err.split())
    summary = json.loads(out)
    assert summary["stages"][1]["params"] == metrics["cut"]["evaluation"]["params"]
    assert (run_dir / "report.html").is_file() and not (run_dir / ".resume").exists()


def test_interrupted_search_resumes_from_its_measured_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from prunekit.pipeline import RunInterrupted, run
    from prunekit.recipe import parse_recipe

    cut_module = importlib.import_module("prunekit.pipeline.cut")
    recipe = parse_recipe(
        "model: {name: mlp, kwargs: {hidden: [32]}}\ndata: {name: iris}\n"
        "train: {epochs: 2, cache: false}\n"
        "search: {budget: {macs: 0.5}, strategies: [{importance: l2}, {importance: l1}], "
        "steps: 3, curve: [0.5]}\nevaluation: {latency: false}\noutput: {save_model: false}\n"
    )
    calls: list[int] = []
    real_accuracy, real_curve = cut_module.accuracy_on, cut_module._curve

    def counted(*args: object, **kw: object) -> float:
        calls.append(1)
        return real_accuracy(*args, **kw)  # type: ignore[arg-type]

    def ctrl_c(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cut_module, "accuracy_on", counted)
    monkeypatch.setattr(cut_module, "_curve", ctrl_c)
    with pytest.raises(RunInterrupted, match="interrupted during search"):
        run(recipe, mode="search", out_dir=tmp_path / "run", progress=False)
    first = len(calls)
    assert first >= 3 and (tmp_path / "run" / ".resume" / "search" / "points").is_dir()
    calls.clear()
    monkeypatch.setattr(cut_module, "_curve", real_curve)
    result = run(recipe, mode="search", out_dir=tmp_path / "run", progress=False, resume=True)
    assert len(calls) < first, (len(calls), first)  # the search's points came from disk
    assert result.report.is_file() and not (tmp_path / "run" / ".resume").exists()
