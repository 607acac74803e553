"""Command line: ``python -m benchmarks.compare [--quick] [--tasks ...] [--seeds N]``.

Runs the configured tasks, writes ``docs/bench/results-<tag>.json`` and regenerates
``docs/BENCHMARKS.md`` with its plots from every results file.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp

from prunekit.errors import ConfigError

from .checkpoint import Checkpoint
from .config import BenchConfig, preset
from .criteria import sweep_criteria
from .methods import method_names
from .render import render_doc
from .runner import run_task


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).resolve().parent)  # fmt: skip
        # generated output (docs/: results, plots, the doc a previous run rewrote) does not
        # make the code dirty
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ":/", ":(top,exclude)docs"],
                               capture_output=True, text=True, cwd=Path(__file__).parent)  # fmt: skip
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment(cfg: BenchConfig) -> dict[str, Any]:
    """Versions, commit, CPU and thread settings the numbers were measured with."""
    return {"commit": _commit(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_pruning": getattr(tp, "__version__", "unknown"), "cpu": _cpu_model(),
            "logical_cpus": torch.multiprocessing.cpu_count(),
            "torch_threads (training)": torch.get_num_threads(),
            "latency threads": cfg.latency_threads, "platform": platform.platform()}  # fmt: skip


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="the < 15 min preset")
    ap.add_argument("--tasks", nargs="*", help="task name prefixes to keep (e.g. t1-resnet20 t4)")
    ap.add_argument("--seeds", type=int, help="number of seeds (0..N-1)")
    ap.add_argument("--methods", nargs="*", help="keep only these methods (exact names)")
    ap.add_argument("--levels", type=float, nargs="*", help="override every task's levels")
    ap.add_argument("--train-epochs", type=int, help="override baseline training epochs")
    ap.add_argument("--ft-epochs", type=int, help="override recovery epochs")
    ap.add_argument("--no-criteria", action="store_true", help="skip the criterion sweep")
    ap.add_argument("--tag", help="results name: docs/bench/results-<tag>.json (default: mode)")
    ap.add_argument("--out", default="docs/bench", help="folder for JSON results and plots")
    ap.add_argument("--doc", default="docs/BENCHMARKS.md", help="Markdown file to regenerate")
    ap.add_argument("--render-only", action="store_true", help="only regenerate doc and plots")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the seeds an interrupted run with the same arguments and commit "
                         "saved in <out>/partial-<tag>.json")  # fmt: skip
    return ap.parse_args(argv)


def configure(args: argparse.Namespace) -> BenchConfig:
    """The preset with the command-line overrides applied."""
    cfg = preset("quick" if args.quick else "full")
    if args.tasks:
        cfg = cfg.select(tuple(args.tasks))
    if args.seeds:  # every task gets them (quick mode pins ResNet-20 to one seed)
        cfg = replace(cfg, seeds=tuple(range(args.seeds)),
                      tasks=tuple(replace(t, seeds=None) for t in cfg.tasks))  # fmt: skip
    if args.ft_epochs:
        cfg = replace(cfg, recovery=replace(cfg.recovery, epochs=args.ft_epochs))
    if args.levels or args.train_epochs:
        tasks = tuple(replace(t, levels=tuple(args.levels) if args.levels and t.kind == "macs"
                              else t.levels, train_epochs=args.train_epochs or t.train_epochs)
                      for t in cfg.tasks)  # fmt: skip
        cfg = replace(cfg, tasks=tasks)
    if args.methods:
        cfg = _only_methods(cfg, tuple(args.methods))
    if args.no_criteria:
        cfg = replace(cfg, criteria_task=None)
    return cfg


def _only_methods(cfg: BenchConfig, names: tuple[str, ...]) -> BenchConfig:
    """Every task keeps the methods named in ``names`` (in the task's order)."""
    valid = set(method_names())
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigError(f"--methods {unknown} unknown; valid: {sorted(valid)}")
    tasks = tuple(replace(t, methods=tuple(m for m in t.methods if m in names)) for t in cfg.tasks)
    empty = [t.name for t in tasks if not t.methods]
    if empty:
        raise ConfigError(f"--methods {list(names)} leaves tasks {empty} with no method")
    return replace(cfg, tasks=tasks)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    out, doc = Path(args.out), Path(args.doc)
    out.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        cfg = configure(args)
        env = environment(cfg)  # at the start: the commit the run's code came from
        tag = args.tag or cfg.mode
        key = {"config": cfg.to_dict(), "commit": env["commit"]}
        ckpt = Checkpoint.open(out / f"partial-{tag}.json", key, resume=args.resume)
        t0 = time.time()
        rows: list[dict[str, Any]] = []
        for task in cfg.tasks:
            rows += run_task(task, cfg, checkpoint=ckpt)
        crit = next((t for t in cfg.tasks if t.name == cfg.criteria_task), None)
        t1 = time.time()
        criteria = sweep_criteria(crit, cfg) if crit is not None else []
        elapsed = ckpt.elapsed_s + time.time() - t1  # the seeds' time, resumed ones included
        res: dict[str, Any] = {"command": "python -m benchmarks.compare "
               + shlex.join(a for a in argv if a != "--resume"),
               "config": cfg.to_dict(), "environment": env, "rows": rows,
               "criteria": criteria, "elapsed_s": elapsed, "wall_s": time.time() - t0,
               "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
        path = out / f"results-{tag}.json"
        path.write_text(json.dumps(res, indent=1))
        ckpt.finish()
        print(f"wrote {path} ({res['elapsed_s'] / 60:.1f} min)")
    render_doc(out, doc)
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
