"""Weight-level sparsity of SmolLM2-135M (magnitude / Wanda / SparseGPT, 50% unstructured and
2:4, OWL): held-out perplexity under the shared protocol of :mod:`llm_common`.

One configuration per process (so peak RSS is that configuration's own), one JSON line on
stdout::

    python benchmarks/llm_sparse.py --method wanda --pattern 2:4
    python benchmarks/llm_sparse.py --method wanda --allocation owl
    python benchmarks/llm_sparse.py --all > docs/bench/llm_sparse.jsonl   # every row below

Goals (issue #18): 50% unstructured <= 1.35x dense, 2:4 <= 2x dense (dense = 37.92).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import llm_common  # benchmarks/ is sys.path[0] when this file runs as a script

from prunekit.llm import sparsify

ROWS: list[list[str]] = [
    ["--method", m, "--pattern", p]
    for p in ("unstructured", "2:4")
    for m in ("magnitude", "wanda", "sparsegpt")
] + [["--method", "wanda", "--allocation", "owl"], ["--method", "sparsegpt", "--allocation", "owl"]]
"""The rows of ``--all`` (one process each)."""

GOALS = {"unstructured": 1.35, "2:4": 2.0}


def _nm_sparsity(pattern: str) -> float:
    n, m = (int(v) for v in pattern.split(":"))
    return 1 - n / m


def run_one(args: argparse.Namespace) -> None:
    model, tok, weights = llm_common.load()
    calib = llm_common.calibration(tok, sequences=args.calib)
    res = sparsify(
        model,
        calib,
        method=args.method,
        sparsity=args.sparsity if args.pattern == "unstructured" else None,
        pattern=args.pattern,
        allocation=args.allocation,
        damp=args.damp,
        sequential=not args.one_pass,
        inplace=True,
        progress=True,  # on stderr
    )
    row: dict[str, object] = {
        "family": "sparse",
        "method": args.method,
        "pattern": args.pattern,
        "allocation": args.allocation,
        "ratio": args.sparsity if args.pattern == "unstructured" else _nm_sparsity(args.pattern),
        "block_removed": round(res.sparsity, 4),
        "prune_s": round(res.seconds, 1),
        "damp": args.damp,
        "sequential": not args.one_pass,
        "calib_sequences": args.calib,
        "goal_x_dense": GOALS.get(args.pattern if args.sparsity == 0.5 else ""),
        "summary": res.summary(),
    }
    if res.outlier_ratios:
        row["block_sparsity"] = [round(s, 4) for s in res.block_sparsity]
    llm_common.finish_row(res.model, tok, weights, row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="wanda", choices=["magnitude", "wanda", "sparsegpt"])
    ap.add_argument("--pattern", default="unstructured")
    ap.add_argument("--allocation", default="uniform", choices=["uniform", "owl"])
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--calib", type=int, default=llm_common.CALIB_SEQUENCES)
    ap.add_argument("--one-pass", action="store_true", help="sequential=False")
    ap.add_argument("--all", action="store_true", help="every row of ROWS, one process each")
    args = ap.parse_args()
    if not args.all:
        run_one(args)
        return
    for extra in ROWS:
        subprocess.run([sys.executable, __file__, *extra], check=True)


if __name__ == "__main__":
    main()
