"""Scale: block-wise structured pruning of a randomly initialised 1.1 B LLaMA (issue #18).

TinyLlama-1.1B's shape (hidden 2048, FFN 5632, 22 blocks, 32 query heads sharing 4 KV
heads, vocab 32000, untied head), random weights, built once in the requested dtype (no
fp32 copy for bf16: the default dtype is set while the modules are constructed). 20 % of
the query heads (rounded per KV group: 2 of 8 per group, 25 %, with the warning) and 20 %
of the FFN neurons are removed with a data-driven criterion on 32 random calibration
windows of 512 tokens, in place, block by block (one forward per block). One JSON line on
stdout; run it under ``/usr/bin/time -v`` for the external peak RSS::

    /usr/bin/time -v python benchmarks/llm_scale.py --dtype bf16
    /usr/bin/time -v python benchmarks/llm_scale.py --dtype fp32
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings

import torch
import transformers

from prunekit.llm import prune_blockwise

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def build(dtype: torch.dtype, layers: int) -> torch.nn.Module:
    """The random 1.1 B model, allocated once in ``dtype``."""
    cfg = transformers.LlamaConfig(
        vocab_size=32000,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    )
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        torch.manual_seed(0)
        model = transformers.LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--criterion", default="wanda_sp")
    ap.add_argument("--compensation", default="none")
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--layers", type=int, default=22)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = build(DTYPES[args.dtype], args.layers)
    build_s = time.perf_counter() - t0
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    rss_built = _rss_gb()
    ids = torch.randint(
        0, 32000, (args.calib, args.seq_len), generator=torch.Generator().manual_seed(0)
    )
    cpu0 = _cpu_s()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = prune_blockwise(
            model,
            ids,
            criterion=args.criterion,
            compensation=args.compensation,
            head_ratio=0.2,
            ffn_ratio=0.2,
            inplace=True,
        )
    prune_cpu = _cpu_s() - cpu0
    before, after = res.block_params
    rss = _rss_gb()
    row = {
        "family": "scale",
        "dtype": args.dtype,
        "criterion": args.criterion,
        "compensation": res.compensation,
        "threads": args.threads,
        "calibration": [args.calib, args.seq_len],
        "params": sum(p.numel() for p in model.parameters()),
        "weights_gb": round(weights / 2**30, 3),
        "build_s": round(build_s, 1),
        "prune_s": round(res.seconds, 1),
        "prune_cpu_s": round(prune_cpu, 1),
        "one_pass": res.one_pass,
        "block_removed": round(1 - after / before, 4),
        "config": [model.config.num_attention_heads, model.config.intermediate_size],
        "rss_after_build_gb": round(rss_built, 3),
        "peak_rss_gb": round(rss, 3),
        "rss_over_weights": round(rss * 2**30 / weights, 3),
        "warnings": [str(w.message)[:120] for w in seen],
        "summary": res.summary(),
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
