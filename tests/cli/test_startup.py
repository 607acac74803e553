"""Start-up: the CLI answers `init`, `--help` and recipe errors without importing the heavy
stack, and checks the files a recipe names before it loads any data.

Timing is not asserted here (it depends on the machine); the import structure is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from prunekit.cli import app

HEAVY = ("torch", "matplotlib", "sklearn", "numpy", "mlxtend", "onnx")

_WRAPPER = """
import json, sys
from prunekit.cli import app
try:
    app({args!r}, prog_name="prunekit")
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("@@" + json.dumps({{"code": code, "heavy": heavy}}))
"""


def _cli_in_fresh_process(args: list[str], cwd: Path) -> dict:
    """Run the CLI in a new interpreter; its exit code and the heavy modules it imported."""
    code = _WRAPPER.format(args=args, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("@@"))
    return {**json.loads(line[2:]), "stderr": out.stderr}


def test_regression_init_and_help_do_not_import_torch(tmp_path: Path) -> None:
    res = _cli_in_fresh_process(["init", str(tmp_path / "r.yaml")], tmp_path)
    assert res["code"] == 0 and (tmp_path / "r.yaml").is_file(), res
    assert res["heavy"] == [], res
    res = _cli_in_fresh_process(["--help"], tmp_path)
    assert res["code"] == 0 and res["heavy"] == [], res


def test_regression_recipe_errors_do_not_import_torch(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("model: {name: lenet5}\ndata: {name: mnist}\nprune: {rato: 0.5}\n")
    res = _cli_in_fresh_process(["prune", str(typo)], tmp_path)
    assert res["code"] == 2 and "typo.yaml:3: prune.rato: unknown key 'rato'" in res["stderr"]
    assert res["heavy"] == [], res
    missing = tmp_path / "missing.yaml"
    missing.write_text("model: {name: 'python:./gone.py:build'}\ndata: {name: mnist}\n"
                       "prune: {ratio: 0.5}\n")  # fmt: skip
    res = _cli_in_fresh_process(["prune", str(missing)], tmp_path)
    assert res["code"] == 3, res
    assert "missing.yaml:1: model.name: python file" in res["stderr"]
    assert "gone.py" in res["stderr"] and "does not exist" in res["stderr"]
    assert res["heavy"] == [], res


def test_regression_missing_model_file_is_reported_before_the_data_loads(tmp_path: Path) -> None:
    marker = tmp_path / "data_was_loaded"
    (tmp_path / "data.py").write_text(
        "from pathlib import Path\n"
        "def loaders(batch_size):\n"
        f"    Path({str(marker)!r}).write_text('yes')\n"
        "    raise RuntimeError('the data factory ran')\n"
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: {name: 'python:./gone.py:build'}\n"
        "data: {name: 'python:./data.py:loaders'}\n"
        "prune: {ratio: 0.5}\n"
    )
    res = CliRunner().invoke(app, ["--json", "prune", str(recipe)])
    assert res.exit_code == 3, res.output
    assert json.loads(res.stdout)["error"] == "ResolveError"
    assert "gone.py" in res.output and "does not exist" in res.output
    assert not marker.exists(), "the data factory ran before the missing model file was found"


def test_missing_weights_file_is_a_resolution_error_naming_the_key(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: mlp, weights: nope.safetensors}\ndata: {name: iris}\n"
                      "prune: {ratio: 0.5}\n")  # fmt: skip
    res = CliRunner().invoke(app, ["prune", str(recipe)])
    assert res.exit_code == 3
    assert "r.yaml:1: model.weights: weights" in res.output and "nope.safetensors" in res.output


def test_import_prunekit_is_lazy_and_complete() -> None:
    code = (
        "import sys, prunekit\n"
        "light = 'torch' not in sys.modules\n"
        "from prunekit import Pruner, prune, ConfigError\n"
        "import torch\n"
        "m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))\n"
        "res = prune(m, torch.randn(1, 4), ratio=0.5)\n"
        "missing = [n for n in prunekit.__all__ if not hasattr(prunekit, n)]\n"
        "print(light, res.model[0].out_features, missing)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["True", "4", "[]"], out.stderr
