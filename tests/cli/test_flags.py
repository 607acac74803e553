"""`--json` and `--quiet` work before the subcommand and after it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prunekit.cli import app

runner = CliRunner()


@pytest.mark.parametrize("where", ["before", "after"])
def test_regression_json_flag_before_or_after_the_subcommand(tmp_path: Path, where: str) -> None:
    target = str(tmp_path / "r.yaml")
    args = ["--json", "init", target] if where == "before" else ["init", target, "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"recipe": target}


@pytest.mark.parametrize("where", ["before", "after"])
def test_regression_quiet_flag_before_or_after_the_subcommand(tmp_path: Path, where: str) -> None:
    target = str(tmp_path / "r.yaml")
    args = ["-q", "init", target] if where == "before" else ["init", target, "--quiet"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert res.stdout == "" and "wrote" not in res.stderr
    assert Path(target).is_file()


def test_json_after_the_subcommand_reports_errors_as_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: mlp}\ndata: {name: iris}\nprune: {rato: 0.5}\n")
    for command in ("prune", "search", "evaluate", "sensitivity"):
        res = runner.invoke(app, [command, str(bad), "--json"])
        assert res.exit_code == 2, (command, res.output)
        assert json.loads(res.stdout)["error"] == "RecipeError", command


def test_every_command_accepts_the_flags_after_it() -> None:
    for command in ("prune", "search", "demo", "init", "evaluate", "sensitivity", "report",
                    "export"):  # fmt: skip
        res = runner.invoke(app, [command, "--help"])
        assert res.exit_code == 0, command
        assert "--json" in res.output and "--quiet" in res.output, command
