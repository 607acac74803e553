"""``prunekit prune recipe.yaml --nproc 2`` (which runs ``torchrun --nproc_per_node 2 -m
prunekit prune recipe.yaml``) works unchanged: one run directory (rank 0's), the same plan
as one process, one JSON summary, nothing left by the other rank."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prunekit.cli.launch import relaunch_command

RECIPE = """\
model: {name: mlp, kwargs: {hidden: [32, 32]}}
data: {name: iris, seed: 0}
train: {epochs: 3, cache: false}
prune: {ratio: 0.5, importance: taylor}
recovery: {finetune: {epochs: 2, lr: 0.01}}
evaluation: {latency: false}
"""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    env.pop("RANK", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_torchrun_two_ranks_write_one_run_with_the_one_process_plan(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    alone = _run(["-m", "prunekit", "prune", "r.yaml", "-o", "alone", "--json"], tmp_path)
    assert alone.returncode == 0, alone.stderr[-3000:]
    # --nproc 2 re-runs the command as `torchrun --nproc_per_node 2 -m prunekit prune ...`
    two = _run(["-m", "prunekit", "prune", "r.yaml", "-o", "two", "--json", "--nproc", "2"],
               tmp_path)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    plans = [json.loads((tmp_path / d / "plan.json").read_text()) for d in ("alone", "two")]
    assert plans[0]["removed"] == plans[1]["removed"]
    assert (tmp_path / "two" / "report.html").is_file()
    summaries = [line for line in two.stdout.splitlines() if line == "{"]
    assert len(summaries) == 1, two.stdout  # one report: rank 0's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "r.yaml", "two"]


def test_nproc_command_line_drops_the_flag_and_runs_prunekit_under_torchrun() -> None:
    cmd = relaunch_command(3, ["prune", "r.yaml", "--nproc", "3", "--json", "--nproc=3"])
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--nnodes"]
    assert cmd[cmd.index("--nproc_per_node") + 1] == "3"
    assert cmd[cmd.index("--master_addr") + 1] == "127.0.0.1"
    assert cmd[-5:] == ["-m", "prunekit", "prune", "r.yaml", "--json"]
