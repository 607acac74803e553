"""Recovery of a pruned SmolLM2-135M by logit distillation from its dense model.

One configuration per process, one JSON row on stdout (the protocol of
:mod:`benchmarks.llm_common`)::

    python benchmarks/llm_distill.py --head-ratio 0 --target 0.2 --max-seconds 900
    python benchmarks/llm_distill.py --head-ratio 0.34 --target 0.2 --max-seconds 900

The model is pruned with ``prune_blockwise(criterion="flap", inplace=True)`` on the protocol's
calibration windows (the dense model is copied once before, and stays the teacher), its
held-out perplexity is measured, then it is distilled on the whole calibration stream (the
calibration works only, cut into ``--seq-len`` windows, shuffled) for at most
``--max-seconds`` of wall time, and measured again on the same held-out windows.
``--student-cache FILE`` keeps the pruned model (and its perplexity) between tuning runs of
the same cut. The machine is shared: the row records the load average before and after.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llm_common import DENSE_PPL, EVAL_WINDOWS, SEQ_LEN, block_params, calibration, finish_row, load

from prunekit.data.text import load_text
from prunekit.evaluation import perplexity
from prunekit.llm import distill, prune_blockwise


def pruned_student(teacher: Any, tok: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The pruned copy of ``teacher`` and its row keys (from ``--student-cache`` if there)."""
    cache = Path(args.student_cache) if args.student_cache else None
    if cache is not None and cache.exists():
        saved = torch.load(cache, weights_only=False)
        return saved["model"], saved["row"]
    student = copy.deepcopy(teacher)  # the one copy: the teacher stays dense
    before = block_params(student)
    res = prune_blockwise(
        student, calibration(tok), criterion="flap", head_ratio=args.head_ratio,
        target=args.target, inplace=True,
    )  # fmt: skip
    ev = load_text("shakespeare", tokenizer=tok, split="evaluation")
    ppl = perplexity(student, ev, seq_len=SEQ_LEN, max_windows=EVAL_WINDOWS, progress=False)
    row = {
        "prune_s": round(res.seconds, 1),
        "block_removed": round(1 - block_params(student) / before, 4),
        "ppl_before": round(ppl.perplexity, 3),
        "x_dense_before": round(ppl.perplexity / DENSE_PPL, 3),
        "config": [
            student.config.num_attention_heads,
            student.config.num_key_value_heads,
            student.config.intermediate_size,
        ],
    }
    if cache is not None:
        torch.save({"model": student, "row": row}, cache)
    return student, row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--head-ratio", type=float, default=0.0)
    ap.add_argument("--target", type=float, default=0.2)
    ap.add_argument("--max-seconds", type=float, default=900.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--seq-len", type=int, default=SEQ_LEN)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--alpha-ce", type=float, default=0.0)
    ap.add_argument("--student-cache", default=None)
    args = ap.parse_args()
    teacher, tok, weights = load()
    student, row = pruned_student(teacher, tok, args)
    text = load_text("shakespeare", tokenizer=tok, split="calibration")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    res = distill(
        student, teacher, text, seq_len=args.seq_len, batch_size=args.batch_size, lr=args.lr,
        warmup_steps=args.warmup_steps, temperature=args.temperature, alpha_ce=args.alpha_ce,
        max_seconds=args.max_seconds, max_steps=args.max_steps, progress=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    method = "flap+bias ffn" if args.head_ratio == 0 else f"flap+bias heads {args.head_ratio}+ffn"
    row = {
        "family": "distill",
        "method": f"{method} -> logit KD",
        "ratio": args.target,
        "head_ratio": args.head_ratio,
        **row,
        "distill": res.settings,
        "steps": res.steps,
        "tokens": res.tokens,
        "distill_s": round(wall, 1),
        "minutes": round(wall / 60, 2),
        "steps_per_s": round(res.steps_per_second, 4),
        "tokens_per_s": round(res.tokens / wall, 1),
        "stopped_by": res.stopped_by,
        "loss_first": round(res.losses[0], 4) if res.losses else None,
        "loss_last10": round(sum(res.losses[-10:]) / max(len(res.losses[-10:]), 1), 4),
        "losses": [round(v, 4) for v in res.losses],
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "threads": torch.get_num_threads(),
    }
    finish_row(student, tok, weights, row)


if __name__ == "__main__":
    main()
