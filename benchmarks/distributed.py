"""Wall time of prunekit's distributed path: 1 process vs 2 (torchrun, gloo) on this machine.

Two jobs, each run in fresh processes and timed from inside (after start-up, so that the
import time of torch is not counted):

- scoring: Taylor on ResNet-50 (built in code, random weights; 64 calibration batches of
  ``--batch`` images at ``--size``²): the calibration pass and the plan of a 50% cut;
- recovery: one fine-tuning epoch of ResNet-20 on animal-mnist (batches of 64), under DDP
  with each rank taking every other batch.

Rows (JSON lines, stdout and ``docs/bench/distributed.jsonl``): job, processes, threads per
process, seconds (median of ``--repeats``), the plan's SHA-256 (scoring: equal across rows).
Ratios: 2 processes x 1 thread against 1 process x 2 threads (the same 2 cores) and against
1 process x 1 thread.

    python benchmarks/distributed.py --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "distributed.jsonl"


def _scoring(batch: int, size: int, batches: int) -> dict[str, object]:
    import prunekit
    from benchmarks.engine_overhead import ResNet50
    from prunekit.importance import Taylor

    torch.manual_seed(0)
    net = ResNet50().eval()
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(batch, 3, size, size, generator=g), torch.randint(0, 1000, (batch,), generator=g))
            for _ in range(batches)]  # fmt: skip
    crit = Taylor(data=data, loss_fn=lambda o, b: F.cross_entropy(o, b[1]))
    start = time.perf_counter()
    res = prunekit.prune(net, torch.randn(1, 3, size, size), ratio=0.5, importance=crit,
                         ignore=[net.fc], verify="shapes")  # fmt: skip
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "plan": hashlib.sha256(res.plan.to_json().encode()).hexdigest()}


def _recovery() -> dict[str, object]:
    from prunekit import distributed
    from prunekit.data import load_dataset
    from prunekit.models import build_model
    from prunekit.recovery import finetune

    splits = load_dataset("animal_mnist", seed=0)
    train, _, _ = splits.loaders(64, seed=0)
    batches = list(train)
    torch.manual_seed(0)
    net = build_model("resnet20", num_classes=10, input_shape=(1, 28, 28))
    model = torch.nn.parallel.DistributedDataParallel(net) if distributed.active() else net
    part = distributed.shard(batches, even=True)
    start = time.perf_counter()
    finetune(model, part, epochs=1, lr=0.05, progress=False)
    return {"seconds": time.perf_counter() - start, "plan": None}


def worker(args: argparse.Namespace) -> None:
    from prunekit import distributed

    distributed.init_from_env()
    torch.set_num_threads(args.threads)
    row = _scoring(args.batch, args.size, args.batches) if args.job == "scoring" else _recovery()
    if distributed.is_main():
        print("ROW " + json.dumps(row), flush=True)


def _launch(job: str, procs: int, threads: int, args: argparse.Namespace) -> dict[str, object]:
    me = [str(Path(__file__).resolve()), "--worker", "--job", job, "--threads", str(threads),
          "--batch", str(args.batch), "--size", str(args.size), "--batches", str(args.batches)]  # fmt: skip
    cmd = [sys.executable, *me]
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
               "--nproc_per_node", str(procs), "--master_addr", "127.0.0.1",
               "--master_port", str(29700 + procs * 10 + threads), *me]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=False)
    rows = [json.loads(line[4:]) for line in out.stdout.splitlines() if line.startswith("ROW ")]
    if out.returncode != 0 or not rows:
        raise RuntimeError(f"{job} x{procs}: rc {out.returncode}\n{out.stderr[-2000:]}")
    return rows[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--job", default="scoring", choices=["scoring", "recovery"])
    ap.add_argument("--jobs", default="scoring,recovery")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batches", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for job in args.jobs.split(","):
        runs: dict[tuple[int, int], list[float]] = {}
        plans: dict[tuple[int, int], set[object]] = {}
        for _ in range(args.repeats):  # interleaved: 1x1, 1x2, 2x1 in every round
            for procs, threads in ((1, 1), (1, 2), (2, 1)):
                r = _launch(job, procs, threads, args)
                runs.setdefault((procs, threads), []).append(float(r["seconds"]))  # type: ignore[arg-type]
                plans.setdefault((procs, threads), set()).add(r["plan"])
        med = {k: statistics.median(v) for k, v in runs.items()}
        for (procs, threads), secs in runs.items():
            row = {"job": job, "processes": procs, "threads": threads,
                   "seconds_median": round(med[(procs, threads)], 2),
                   "seconds": [round(s, 2) for s in secs],
                   # 1 vs 2 processes at 1 thread each: float32 gradients also depend on the
                   # thread count, so the 2-thread row is not part of this comparison
                   "plans_equal_1p_2p": plans[(1, 1)] == plans[(2, 1)] and len(plans[(1, 1)]) == 1,
                   "load": os.getloadavg()[0]}  # fmt: skip
            if job == "scoring":
                row.update(batch=args.batch, size=args.size, batches=args.batches)
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(json.dumps({"job": job,
                          "ratio_2p_vs_1p2t": round(med[(2, 1)] / med[(1, 2)], 3),
                          "ratio_2p_vs_1p1t": round(med[(2, 1)] / med[(1, 1)], 3)}), flush=True)  # fmt: skip
        rows.append({"job": job, "ratio_2p_vs_1p2t": round(med[(2, 1)] / med[(1, 2)], 3),
                     "ratio_2p_vs_1p1t": round(med[(2, 1)] / med[(1, 1)], 3)})  # fmt: skip
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
