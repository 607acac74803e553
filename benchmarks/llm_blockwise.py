"""Block-wise structured pruning of SmolLM2-135M: dense vs pruned held-out perplexity
(protocol: :mod:`benchmarks.llm_common`).

One configuration per process (so peak RSS is that configuration's own), one JSON line on
stdout::

    python benchmarks/llm_blockwise.py --method dense
    python benchmarks/llm_blockwise.py --method flap --target 0.2
    python benchmarks/llm_blockwise.py --method wanda_sp --compensation lsq --allocation adaptive

``--allocation uniform`` with ``--head-ratio 0`` cuts FFN neurons only; ``adaptive`` shares
``--target`` between query heads (per KV group) and FFN neurons by FLAP's standardised
global scores (``--units``).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from llm_common import block_params, calibration, finish_row, load  # noqa: E402

from prunekit.llm import available_llm_criteria, prune_blockwise  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="dense", choices=["dense", *available_llm_criteria()])
    ap.add_argument("--compensation", default=None, choices=[None, "none", "bias", "lsq"])
    ap.add_argument("--allocation", default="uniform", choices=["uniform", "adaptive"])
    ap.add_argument("--units", default="heads,ffn")
    ap.add_argument("--head-ratio", type=float, default=0.0)
    ap.add_argument("--target", type=float, default=0.2)
    ap.add_argument("--round-to", type=int, default=1)
    ap.add_argument("--lsq-damp", type=float, default=0.01)
    args = ap.parse_args()
    model, tok, weights = load()
    row: dict[str, object] = {"family": "dense" if args.method == "dense" else "structured"}
    row["method"] = args.method
    if args.method != "dense":
        torch.manual_seed(0)
        res = prune_blockwise(
            model,
            calibration(tok),
            criterion=args.method,
            head_ratio=args.head_ratio if args.allocation == "uniform" else 0.0,
            target=args.target,
            compensation=args.compensation,
            allocation=args.allocation,
            units=tuple(args.units.split(",")),
            round_to=args.round_to,
            lsq_damp=args.lsq_damp,
            inplace=True,
        )
        before, after = res.block_params
        cfg = model.config
        row.update(
            ratio=args.target,
            compensation=res.compensation,
            allocation=res.allocation,
            units=args.units if args.allocation == "adaptive" else None,
            head_ratio=args.head_ratio if args.allocation == "uniform" else None,
            round_to=args.round_to,
            summary=res.summary(),
            prune_s=round(res.seconds, 1),
            block_removed=round(1 - after / before, 4),
            heads_removed=sum(c.heads_per_group for c in res.cuts) * cfg.num_key_value_heads,
            ffn_removed=sum(c.ffn_neurons for c in res.cuts),
            one_pass=res.one_pass,
        )
        assert block_params(model) == after
    finish_row(model, tok, weights, row)


if __name__ == "__main__":
    main()
