"""The prunekit CLI end to end on a tiny recipe (digits + MLP), through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prunekit.cli import app

runner = CliRunner()

TINY = """\
name: tiny
model: {name: mlp, kwargs: {hidden: [32]}}
data: {name: digits, batch_size: 64}
train: {epochs: 1, lr: 0.003}
prune: {importance: l2, ratio: 0.5}
recovery: {finetune: {epochs: 1}}
evaluation: {batch_sizes: [1], runs: 2}
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("cli")
    recipe = root / "tiny.yaml"
    recipe.write_text(TINY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRUNEKIT_CACHE", str(root / "cache"))
        res = runner.invoke(app, ["--json", "prune", str(recipe), "--out", str(root / "run")])
    assert res.exit_code == 0, res.output
    return root, json.loads(res.stdout)


def test_help_lists_commands_and_exit_codes() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for word in ("demo", "init", "prune", "search", "evaluate", "sensitivity", "report", "export"):
        assert word in res.output
    assert "Exit codes" in res.output


def test_init_writes_valid_recipe(tmp_path: Path) -> None:
    res = runner.invoke(app, ["init", str(tmp_path / "r.yaml")])
    assert res.exit_code == 0, res.output
    again = runner.invoke(app, ["init", str(tmp_path / "r.yaml")])
    assert again.exit_code == 2 and "already exists" in again.output


def test_prune_writes_run_directory(ran: tuple[Path, dict]) -> None:
    root, summary = ran
    run = root / "run"
    for name in ("report.html", "report.md", "metrics.json", "record.json", "plan.json"):
        assert (run / name).is_file(), name
    assert (run / "model" / "model.safetensors").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pruned"]["params"] < metrics["baseline"]["params"]
    assert summary["stages"][0]["stage"] == "baseline"
    assert summary["pruned"]["params"] == metrics["pruned"]["params"]
    assert 0.0 <= summary["pruned"]["agreement"] <= 1.0
    assert "data:image/png;base64" in (run / "report.html").read_text()


def test_report_rerenders(ran: tuple[Path, dict]) -> None:
    run = ran[0] / "run"
    (run / "report.html").unlink()
    res = runner.invoke(app, ["--quiet", "report", str(run)])
    assert res.exit_code == 0, res.output
    assert (run / "report.html").is_file()


def test_export_onnx_matches(ran: tuple[Path, dict]) -> None:
    run = ran[0] / "run"
    res = runner.invoke(app, ["--json", "export", str(run), "--format", "onnx"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert Path(rep["path"]).is_file() and rep["max_abs_diff"] < 1e-4
    assert rep["torch_latency_ms"] > 0 and rep["export_latency_ms"] > 0


def test_bad_recipe_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("importance: l2", "importance: tayler"))
    res = runner.invoke(app, ["prune", str(bad)])
    assert res.exit_code == 2
    assert "bad.yaml:5: prune.importance: 'tayler' is not a criterion" in res.output
    assert "Traceback" not in res.output
    missing = runner.invoke(app, ["prune", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_unresolvable_model_exits_3(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("name: mlp,", "name: 'python:./gone.py:build',"))
    res = runner.invoke(app, ["--json", "prune", str(bad)])
    assert res.exit_code == 3
    assert json.loads(res.stdout)["error"] == "ResolveError"


def test_unknown_command_is_usage_error() -> None:
    assert runner.invoke(app, ["frobnicate"]).exit_code == 2
