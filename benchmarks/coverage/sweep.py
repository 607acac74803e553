"""``make coverage``: run every model of ``models.py`` through prunekit and Torch-Pruning.

Each model runs in its own subprocess (a crash or a hang is a result, not the end of the
sweep); rows are appended to ``docs/coverage.jsonl`` and rendered to ``docs/COVERAGE.md``.

    python -m benchmarks.coverage.sweep [--only SUBSTR ...] [--timeout 600]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
JSONL = ROOT / "docs" / "coverage.jsonl"


def run_one(key: str) -> dict[str, Any]:
    """Check one model in this process (called in a subprocess by :func:`main`)."""
    import torch

    import prunekit

    from .check import check_prunekit, check_torch_pruning
    from .models import all_cases

    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    case = all_cases()[key]()
    model = case.model.get_submodule(case.target) if case.target else case.model
    inputs = case.inputs
    row: dict[str, Any] = {"model": key}
    row["prunekit"] = check_prunekit(model, inputs, case.ignore, case.trace_mode)
    if case.target and row["prunekit"]["ok"]:
        try:  # the pruned backbone must still serve the full detection/segmentation model
            res = prunekit.prune(model, inputs, ratio=0.5, scope="global")
            setattr(case.model, case.target, res.model)
            with torch.no_grad():
                case.model([inputs[0]] if "detection" in key else inputs)
            row["prunekit"]["full_model"] = "runs"
        except Exception as exc:
            row["prunekit"]["ok"] = False
            row["prunekit"]["error"] = f"full model with pruned {case.target}: {exc}"[:300]
    # a partial row first: if Torch-Pruning then hangs, the sweep still has prunekit's result
    row["torch_pruning"] = {"ok": False, "error": "not run"}
    print(json.dumps(row), flush=True)
    fresh = all_cases()[key]()
    tp_model = fresh.model.get_submodule(fresh.target) if fresh.target else fresh.model
    row["torch_pruning"] = check_torch_pruning(tp_model, fresh.inputs, fresh.ignore)
    return row


def render(rows: list[dict[str, Any]]) -> str:
    """The Markdown coverage table (with the MiniLM check when it has run)."""
    from .minilm import OUT as MINILM
    from .render import render_markdown

    minilm = json.loads(MINILM.read_text()) if MINILM.exists() else None
    return render_markdown(rows, minilm)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", help="check one model and print its JSON row")
    parser.add_argument("--only", nargs="*", default=[], help="substrings of model keys")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--max-rss-gb", type=float, default=MAX_RSS_GB,
                        help="kill a model's subprocess above this resident memory")  # fmt: skip
    parser.add_argument("--render", action="store_true", help="only re-render COVERAGE.md")
    parser.add_argument("--resume", action="store_true", help="skip models already in the log")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one)), flush=True)
        return 0
    if not args.render:
        sweep(args.only, args.timeout, args.resume, args.max_rss_gb)
        if not args.only:
            subprocess.run([sys.executable, "-m", "benchmarks.coverage.minilm"], check=False)
    rows = [json.loads(line) for line in JSONL.read_text().splitlines() if line.strip()]
    latest = {r["model"]: r for r in rows}
    (ROOT / "docs" / "COVERAGE.md").write_text(render(list(latest.values())))
    return 0


def _last_row(key: str, stdout: str, failure: str) -> dict[str, Any]:
    """The last JSON row a ``--one`` run printed, or a failed row saying ``failure``."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if lines:
        return dict(json.loads(lines[-1]))
    return {
        "model": key,
        "prunekit": {"ok": False, "error": failure},
        "torch_pruning": {"ok": False, "error": "not run"},
    }


MAX_RSS_GB = 19.0  # a child above this is killed (one tool's runaway must not take the machine;
# vit_h_14 needs ~17 GB, Torch-Pruning on torchvision swin_t grew past 22 GB)


def _rss_gb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _run_child(key: str, timeout: int, max_rss_gb: float) -> tuple[str, str, str | None]:
    """Run ``--one key`` in a subprocess; (stdout, stderr, why it was stopped or None)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.coverage.sweep", "--one", key],
            cwd=ROOT, stdout=out, stderr=err, text=True,
        )  # fmt: skip
        t0, why = time.perf_counter(), None
        while proc.poll() is None:
            time.sleep(1.0)
            if time.perf_counter() - t0 > timeout:
                why = f"timed out after {timeout}s"
            elif _rss_gb(proc.pid) > max_rss_gb:
                why = f"killed: memory above {max_rss_gb:.0f} GB"
            if why:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), why


def sweep(
    only: list[str], timeout: int, resume: bool = False, max_rss_gb: float = MAX_RSS_GB
) -> None:
    from .models import all_cases

    keys = [k for k in all_cases() if not only or any(s in k for s in only)]
    order = ("torchvision", "hf", "tv-", "timm")  # the acceptance list first
    keys.sort(key=lambda k: next(i for i, f in enumerate(order) if k.startswith(f)))
    JSONL.parent.mkdir(exist_ok=True)
    run = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    if not only and not resume:
        JSONL.write_text("")  # a full sweep is one run: its medians never mix engine versions
    if resume and JSONL.exists():
        done = {json.loads(line)["model"] for line in JSONL.read_text().splitlines() if line}
        keys = [k for k in keys if k not in done]
    for i, key in enumerate(keys):
        t0 = time.perf_counter()
        out, err, why = _run_child(key, timeout, max_rss_gb)
        row = _last_row(key, out, why or f"crashed: {err[-300:]}")
        if why and row["torch_pruning"].get("error") == "not run":
            row["torch_pruning"]["error"] = why  # the prunekit half finished, TP did not
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        row["run"] = run
        with JSONL.open("a") as f:
            f.write(json.dumps(row) + "\n")
        pk, tp = row["prunekit"], row["torch_pruning"]
        print(f"[{i + 1}/{len(keys)}] {key}: prunekit {'ok' if pk['ok'] else 'FAIL'}"
              f" | TP {'ok' if tp['ok'] else 'FAIL'} ({row['wall_s']}s) {pk.get('error', '')[:120]}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
