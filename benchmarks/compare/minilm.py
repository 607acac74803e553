"""Task 3: the real pretrained MiniLM encoder with 25% / 50% of heads and FFN neurons removed.

Cosine fidelity of the mean-pooled embeddings to the unpruned model's on
``prunekit.models.REFERENCE_SENTENCES``, right after the cut and after a short embedding
distillation from the unpruned model. Distillation trains on sentences 16-31; fidelity is
reported on the held-out sentences 0-15 (the eight paraphrase pairs) and on all 32. Needs transformers, so it runs in the coverage venv:

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv-cov/bin/python -m benchmarks.compare.minilm

Writes ``docs/bench/minilm.json``; ``python -m benchmarks.compare --render-only`` (or any
benchmark run) puts it into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import copy
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

import prunekit
from prunekit.evaluation import cosine_fidelity, count_macs, count_params, measure_latency
from prunekit.models import REFERENCE_SENTENCES, load_minilm
from prunekit.models import mean_pooled_embeddings as embed
from prunekit.recovery import Distillation, finetune

__all__ = ["OUT", "run"]

OUT = Path("docs/bench/minilm.json")
HEADS = "*.attention.self.query"  # the head group of each layer (q, k, v, output columns)
FFN = "*.intermediate.dense"
RATIOS = (0.25, 0.5)
CRITERIA = ("l2", "random")
DISTILL_EPOCHS = 8


def _train_batches(tok: Any) -> list[dict[str, torch.Tensor]]:
    texts = list(REFERENCE_SENTENCES[16:])
    return [dict(tok(texts[i : i + 8], padding=True, truncation=True, return_tensors="pt"))
            for i in range(0, len(texts), 8)]  # fmt: skip


def _one(model: Any, tok: Any, ref: torch.Tensor, ratio: float, crit: str,
         inputs: dict[str, torch.Tensor]) -> dict[str, Any]:  # fmt: skip
    torch.manual_seed(0)
    t0 = time.perf_counter()
    res = prunekit.prune(model, inputs, module_ratios={HEADS: ratio, FFN: ratio}, importance=crit)
    prune_s = time.perf_counter() - t0
    pruned: Any = res.model.eval()
    cut = cosine_fidelity(embed(pruned, tok, REFERENCE_SENTENCES), ref)
    cut_held = cosine_fidelity(embed(pruned, tok, REFERENCE_SENTENCES[:16]), ref[:16])
    finetune(pruned, _train_batches(tok), optimizer="adamw", lr=5e-5, epochs=DISTILL_EPOCHS,
             lr_schedule="cosine", progress=False, seed=0,
             distill=Distillation(copy.deepcopy(model), mode="embedding", alpha=1.0))  # fmt: skip
    pruned.eval()
    after = cosine_fidelity(embed(pruned, tok, REFERENCE_SENTENCES), ref)
    held = cosine_fidelity(embed(pruned, tok, REFERENCE_SENTENCES[:16]), ref[:16])
    layers: Any = pruned.encoder.layer
    return {"ratio": ratio, "criterion": crit, "prune_s": prune_s,
            "heads": [layer.attention.self.num_attention_heads for layer in layers],
            "ffn": getattr(pruned.config, "intermediate_size", None), "params": count_params(pruned),
            "macs": count_macs(pruned, inputs), "cos_cut_mean": cut.mean, "cos_cut_min": cut.min,
            "cos_distilled_mean": after.mean, "cos_distilled_min": after.min,
            "cos_cut_heldout_mean": cut_held.mean, "cos_distilled_heldout_mean": held.mean,
            "lat_b1_ms": measure_latency(pruned, inputs, batch_size=1, threads=1, runs=30).median_ms}  # fmt: skip


def run() -> dict[str, Any]:
    """Every (ratio, criterion) cut of MiniLM, before and after distillation."""
    model, tok = load_minilm()
    model.eval()
    inputs = dict(tok(REFERENCE_SENTENCES[:2], padding=True, return_tensors="pt"))
    ref = embed(model, tok, REFERENCE_SENTENCES)
    t0 = time.time()
    rows = [_one(model, tok, ref, r, c, inputs) for r in RATIOS for c in CRITERIA]
    return {
        "command": "PYTHONPATH=. HF_HUB_OFFLINE=1 .venv-cov/bin/python -m benchmarks.compare.minilm",
        "torch": torch.__version__, "python": platform.python_version(),
        "sentences": len(REFERENCE_SENTENCES), "distill_epochs": DISTILL_EPOCHS,
        "train_sentences": sum(len(b["input_ids"]) for b in _train_batches(tok)),
        "params_before": count_params(model), "macs_before": count_macs(model, inputs),
        "lat_b1_ms_before": measure_latency(model, inputs, batch_size=1, threads=1, runs=30).median_ms,
        "rows": rows, "elapsed_s": time.time() - t0,
    }  # fmt: skip


def main() -> None:
    res = run()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=1) + "\n")
    for row in res["rows"]:
        print({k: v for k, v in row.items() if k != "heads"})


if __name__ == "__main__":
    main()
