"""Block-wise structured pruning of SmolLM2-135M: dense vs pruned held-out perplexity.

One configuration per process (so peak RSS is that configuration's own), one JSON line on
stdout::

    python benchmarks/llm_blockwise.py --method dense
    python benchmarks/llm_blockwise.py --method flap --head-ratio 0 --target 0.2

Calibration: 32 windows of 512 tokens from the calibration works (seed 0); evaluation: the
first 16 windows of 512 tokens of the evaluation works (never seen in calibration).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from prunekit.data.text import calibration_batch, load_text
from prunekit.evaluation import perplexity
from prunekit.llm import prune_blockwise
from prunekit.models import load_llm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="dense", choices=["dense", "flap", "wanda_sp", "magnitude"])
    ap.add_argument("--head-ratio", type=float, default=0.0)
    ap.add_argument("--target", type=float, default=0.2)
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--eval-windows", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=512)
    args = ap.parse_args()
    torch.manual_seed(0)
    model, tok = load_llm("smollm2-135m")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    row: dict[str, object] = {"method": args.method, "head_ratio": args.head_ratio}
    if args.method != "dense":
        calib = calibration_batch(
            load_text("shakespeare", tokenizer=tok, split="calibration"),
            num_sequences=args.calib,
            seq_len=args.seq_len,
            seed=0,
        )
        res = prune_blockwise(
            model,
            calib,
            criterion=args.method,
            head_ratio=args.head_ratio,
            target=args.target,
            inplace=True,
        )
        model = res.model
        before, after = res.block_params
        row.update(
            summary=res.summary(),
            prune_s=round(res.seconds, 1),
            heads_per_group=res.cut.heads_per_group,
            ffn_neurons=res.cut.ffn_neurons,
            block_removed=round(1 - after / before, 4),
            config=[
                model.config.num_attention_heads,
                model.config.num_key_value_heads,
                model.config.intermediate_size,
            ],
        )
    ev = load_text("shakespeare", tokenizer=tok, split="evaluation")
    t0 = time.perf_counter()
    ppl = perplexity(model, ev, seq_len=args.seq_len, max_windows=args.eval_windows, progress=False)
    prompt = tok("The capital of France is", return_tensors="pt")
    gen = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    row.update(
        ppl=round(ppl.perplexity, 3),
        windows=ppl.windows,
        eval_s=round(time.perf_counter() - t0, 1),
        peak_rss_gb=round(rss / 2**30, 3),
        rss_over_weights=round(rss / weights, 2),
        text=tok.decode(gen[0][prompt["input_ids"].shape[1] :]),
    )
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
