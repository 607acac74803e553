"""Depth pruning of SmolLM2-135M (ShortGPT block influence): held-out perplexity after
removing whole decoder blocks, in the protocol of :mod:`benchmarks.llm_common`.

One configuration per process (so peak RSS is that configuration's own), one JSON line on
stdout::

    python benchmarks/llm_depth.py --blocks 3
    python benchmarks/llm_depth.py --ratio 0.2 --iterative
    python benchmarks/llm_depth.py --blocks 3 --metric angular

``make bench-llm`` appends the rows to ``docs/bench/llm_depth.jsonl``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import llm_common  # noqa: E402

from prunekit.llm import prune_depth  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--blocks", type=int, help="number of decoder blocks to remove")
    how.add_argument("--ratio", type=float, help="fraction of decoder-block params to remove")
    ap.add_argument("--metric", default="cosine", choices=["cosine", "angular"])
    ap.add_argument("--iterative", action="store_true", help="re-measure after each removal")
    args = ap.parse_args()
    model, tok, weights = llm_common.load()
    calib = llm_common.calibration(tok)
    n = model.config.num_hidden_layers
    res = prune_depth(
        model,
        calib,
        blocks=args.blocks,
        ratio=args.ratio,
        metric=args.metric,
        iterative=args.iterative,
        inplace=True,
        progress=False,
    )
    method = f"shortgpt-{args.metric}" + ("-iterative" if args.iterative else "")
    row = {
        "family": "depth",
        "method": method,
        "ratio": args.ratio if args.ratio is not None else round(args.blocks / n, 4),
        "requested": "ratio" if args.ratio is not None else "blocks",
        "blocks_removed": len(res.removed),
        "removed": res.removed,
        "influence_removed": [round(res.scores[i], 5) for i in res.removed],
        "block_removed": round(res.fraction_removed, 4),
        "num_hidden_layers": res.model.config.num_hidden_layers,
        "prune_s": round(res.seconds, 1),
        "summary": res.summary(),
    }
    llm_common.finish_row(res.model, tok, weights, row)


if __name__ == "__main__":
    main()
