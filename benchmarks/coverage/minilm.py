"""The real MiniLM sentence encoder, 30% of heads and 30% of FFN neurons removed (L2, no
recovery): does it save and load from disk, and how close do its embeddings stay?

Run: ``HF_HUB_OFFLINE=1 .venv-cov/bin/python -m benchmarks.coverage.minilm`` (part of
``make coverage``). Writes ``docs/coverage_minilm.json``; ``render.py`` puts it in
docs/COVERAGE.md.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import prunekit
from prunekit.models import REFERENCE_SENTENCES, load_minilm, mean_pooled_embeddings

OUT = Path(__file__).resolve().parents[2] / "docs" / "coverage_minilm.json"
HEADS = "*.attention.self.query"  # the head group of each layer (q, k, v, output columns)
FFN = "*.intermediate.dense"


def _embed(model: Any, tok: Any) -> torch.Tensor:
    with torch.no_grad():
        return mean_pooled_embeddings(model, tok, REFERENCE_SENTENCES)


def _plain_reload(path: Path) -> str:
    """What plain transformers makes of the folder (it cannot express pruned heads)."""
    from transformers import AutoModel

    try:
        AutoModel.from_pretrained(str(path))
    except Exception as exc:  # recorded, not raised: this is the limitation we document
        return f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return "loads"


def run() -> dict[str, Any]:
    from transformers import AutoModel

    torch.manual_seed(0)
    model, tok = load_minilm()
    model.eval()
    inputs = dict(tok(REFERENCE_SENTENCES[:2], padding=True, return_tensors="pt"))
    t0 = time.perf_counter()
    res = prunekit.prune(model, inputs, module_ratios={HEADS: 0.3, FFN: 0.3}, importance="l2")
    prune_s = time.perf_counter() - t0
    pruned = res.model
    cfg = pruned.config
    before, after = _embed(model, tok), _embed(pruned, tok)
    cos = torch.nn.functional.cosine_similarity(before, after, dim=1)
    row: dict[str, Any] = {
        "params_before": prunekit.evaluation.count_params(model),
        "params_after": prunekit.evaluation.count_params(pruned),
        "heads_per_layer": [
            layer.attention.self.num_attention_heads for layer in pruned.encoder.layer
        ],
        "heads_before": model.config.num_attention_heads,
        "ffn_before": model.config.intermediate_size,
        "ffn_after": cfg.intermediate_size,
        "prune_s": round(prune_s, 2),
        "sentences": len(REFERENCE_SENTENCES),
        "cosine_mean": round(float(cos.mean()), 4),
        "cosine_min": round(float(cos.min()), 4),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "minilm-pruned"
        prunekit.export.save_pretrained(pruned, path)
        again = prunekit.export.from_pretrained(AutoModel, path)
        reloaded = _embed(again, tok)
        row["reload_max_abs_diff"] = float((reloaded - after).abs().max())
        row["reload_ok"] = row["reload_max_abs_diff"] < 1e-5
        row["plain_transformers_reload"] = _plain_reload(path)
    return row


def main() -> None:
    row = run()
    OUT.write_text(json.dumps(row, indent=1) + "\n")
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
