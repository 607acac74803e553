"""The report's language-model section: perplexity, agreement, speed and samples.

A run of a decoder language model (an LLM recipe) records under ``baseline["language"]``
and ``pruned["language"]`` what :func:`prunekit.pipeline.llm_eval.evaluate_language`
measured: the perplexity protocol (window length, stride, windows, scored tokens, the
held-out works), decoder-block parameters and non-zero weights, batch-1 prefill and decode
speed, and a greedy continuation of a prompt; ``meta["steps"]`` lists what each prune step
did. A record without them (a classifier run) has no such section.
"""

from __future__ import annotations

from typing import Any

from .document import Block, Heading, Table, Text
from .record import RunRecord
from .style import human

__all__ = ["language_blocks"]


def _ratio(before: Any, after: Any, suffix: str = "x") -> str:
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)) or not before:
        return "—"
    return f"{after / before:.3f}{suffix}"


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else "—"


def _protocol(lang: dict[str, Any]) -> str:
    proto = lang.get("protocol") or {}
    works = ", ".join(proto.get("works") or []) or "?"
    return (
        f"Perplexity = exp(mean negative log-likelihood) over {lang.get('tokens', '?'):,} "
        f"scored tokens in {lang.get('windows', '?')} windows of {lang.get('seq_len', '?')} "
        f"tokens (stride {lang.get('stride', '?')}) of the held-out works of "
        f"{proto.get('dataset', '?')} ({works}), never seen in calibration."
    )


def _rows(record: RunRecord, dense: dict[str, Any], pruned: dict[str, Any]) -> list[list[str]]:
    b, a = record.baseline, record.pruned
    rows = [
        ["perplexity", _num(b.get("perplexity"), ".3f"), _num(a.get("perplexity"), ".3f"),
         _ratio(b.get("perplexity"), a.get("perplexity"), "x dense")],
        ["next-token agreement with dense", "100%" if a.get("agreement") is not None else "—",
         _num(a.get("agreement"), ".2%"), ""],
        ["decoder blocks", str(dense.get("blocks", "—")), str(pruned.get("blocks", "—")), ""],
        ["decoder-block parameters", human(dense.get("block_params", 0)),
         human(pruned.get("block_params", 0)),
         _ratio(dense.get("block_params"), pruned.get("block_params"))],
        ["non-zero decoder-block weights", human(dense.get("block_nonzero", 0)),
         human(pruned.get("block_nonzero", 0)),
         _ratio(dense.get("block_nonzero"), pruned.get("block_nonzero"))],
    ]  # fmt: skip
    fast_b, fast_a = dense.get("speed") or {}, pruned.get("speed") or {}
    for key, label in (("prefill_tokens_per_s", "prefill"), ("decode_tokens_per_s", "decode")):
        if key in fast_b or key in fast_a:
            x, y = fast_b.get(key), fast_a.get(key)
            rows.append([f"{label} tokens/s, batch 1", _num(x, ",.1f"), _num(y, ",.1f"),
                         _ratio(x, y)])  # fmt: skip
    return rows


def _speed_note(lang: dict[str, Any]) -> str:
    speed = lang.get("speed")
    if not isinstance(speed, dict):
        return ""
    return (
        f" Speed: greedy generation with the KV cache, {speed.get('prompt_tokens')}-token "
        f"prompt then {speed.get('new_tokens')} decode steps, median of "
        f"{speed.get('repeats')} run(s), {speed.get('threads')} thread(s), on this machine."
    )


def _samples(dense: dict[str, Any], pruned: dict[str, Any]) -> list[Block]:
    before, after = dense.get("sample"), pruned.get("sample")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    return [
        Table(
            ["model", "greedy continuation"],
            [["dense", repr(before.get("text", ""))], ["pruned", repr(after.get("text", ""))]],
            f"Prompt: {before.get('prompt', '')!r}.",
        )
    ]


def language_blocks(record: RunRecord) -> list[Block]:
    """The language-model section of ``record`` (empty when it has no language metrics)."""
    dense, pruned = record.baseline.get("language"), record.pruned.get("language")
    if not isinstance(dense, dict) or not isinstance(pruned, dict):
        return []
    blocks: list[Block] = [Heading("Language model: perplexity, agreement, speed")]
    caption = _protocol(pruned) + _speed_note(pruned)
    blocks.append(Table(["metric", "dense", "pruned", "change"], _rows(record, dense, pruned),
                        caption, [False, True, True, True]))  # fmt: skip
    blocks += _samples(dense, pruned)
    steps = record.meta.get("steps")
    if isinstance(steps, list) and steps:
        blocks.append(Heading("Prune steps", 3))
        blocks += [Text(f"{i + 1}. {s}") for i, s in enumerate(steps)]
    return blocks
