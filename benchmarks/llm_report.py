"""The LLM section of docs/BENCHMARKS.md, from every ``docs/bench/llm_*.jsonl`` (issue #18).

Reads the rows of ``llm_common``'s protocol (one JSON object per line; files or keys that are
missing are tolerated), recomputes ``x_dense`` from the dense row (``llm_common.DENSE_PPL``
when there is none), and writes, between ``<!-- llm:begin -->`` and ``<!-- llm:end -->``
(appended when the markers are missing; the rest of the file is left as it is): one table per
family, the acceptance goals with met / not met computed from the rows, and a plot of held-out
perplexity (log scale) against decoder-block parameters removed, one line per method::

    python benchmarks/llm_report.py
    python benchmarks/llm_report.py --bench-dir docs/bench --doc docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- llm:begin -->", "<!-- llm:end -->"
DENSE_FALLBACK = 37.92  # llm_common.DENSE_PPL, repeated so this script needs no torch
RATIOS = (0.1, 0.2, 0.3, 0.5)
PLOT_NAME = "llm_ppl_vs_removed.png"
Row = dict[str, Any]


def load_rows(bench_dir: Path) -> list[Row]:
    """Every row of every ``llm_*.jsonl`` under ``bench_dir``, with ``family`` filled in."""
    rows: list[Row] = []
    for path in sorted(bench_dir.glob("llm_*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                row.setdefault("family", "dense" if row.get("method") == "dense" else "structured")
                row["_file"] = path.name
                rows.append(row)
    return rows


def dense_ppl(rows: list[Row]) -> tuple[float, bool]:
    """The dense perplexity of the rows (the last dense row) and whether it was measured."""
    dense = [
        r["ppl"] for r in rows if r["family"] == "dense" and isinstance(r.get("ppl"), int | float)
    ]
    return (float(dense[-1]), True) if dense else (DENSE_FALLBACK, False)


def with_x_dense(rows: list[Row], dense: float) -> list[Row]:
    """The rows with ``x_dense`` (and ``x_dense_before``) recomputed from ``dense``."""
    for r in rows:
        for ppl_key, x_key in (("ppl", "x_dense"), ("ppl_before", "x_dense_before")):
            if isinstance(r.get(ppl_key), int | float):
                r[x_key] = r[ppl_key] / dense
    return rows


def finished(r: Row) -> bool:
    return r.get("status", "ok") == "ok" and isinstance(r.get("ppl"), int | float)


def at_ratio(r: Row, ratio: float) -> bool:
    """Whether ``r`` belongs to the ``ratio`` column: its requested ratio, else its measured one."""
    if isinstance(r.get("ratio"), int | float):
        return bool(abs(r["ratio"] - ratio) < 1e-6)
    return (
        isinstance(r.get("block_removed"), int | float) and abs(r["block_removed"] - ratio) <= 0.02
    )


def fmt_ppl(r: Row) -> str:
    if not finished(r):
        secs = r.get("seconds")
        secs = f"{secs:.0f}" if isinstance(secs, int | float) else "?"
        return f"{r.get('status', 'failed')} after {secs} s ({r.get('phase', '?')})"
    return f"{_num(r['ppl'])} ({_num(r['x_dense'])}×)"


def _num(v: Any, digits: int = 2) -> str:
    if not isinstance(v, int | float) or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.{digits}f}"


def _pct(v: Any) -> str:
    return f"{100 * v:.1f} %" if isinstance(v, int | float) else "–"


def table(header: list[str], body: Iterable[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in body]
    return out


def method_key(r: Row) -> str:
    """The label of ``r``'s method line: method plus what distinguishes it within its family."""
    parts = [str(r.get("method", "?"))]
    for key in ("compensation", "allocation", "pattern", "dtype"):
        if r.get(key) not in (None, "", "none", "uniform"):
            parts.append(str(r[key]))
    if isinstance(r.get("head_ratio"), int | float) and r["head_ratio"] > 0:
        parts.append(f"heads {r['head_ratio']:g}")
    return " · ".join(parts)


def pivot(rows: list[Row], title: str) -> list[str]:
    """Method lines × ratio columns; a cell is ppl (×dense, block params removed)."""
    by_key: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_key[method_key(r)].append(r)
    body = []
    for key, rs in sorted(by_key.items()):
        cells = []
        for ratio in RATIOS:
            hit = [r for r in rs if at_ratio(r, ratio)]
            best = min(hit, key=lambda r: r["ppl"] if finished(r) else math.inf) if hit else None
            cells.append(
                "–"
                if best is None
                else fmt_ppl(best)
                + (f", {_pct(best.get('block_removed'))}" if finished(best) else "")
            )
        secs = max(
            (r["prune_s"] for r in rs if isinstance(r.get("prune_s"), int | float)), default=None
        )
        rss = max(
            (
                r["rss_over_weights"]
                for r in rs
                if isinstance(r.get("rss_over_weights"), int | float)
            ),
            default=None,
        )
        body.append([key, *cells, _num(secs, 1), _num(rss)])
    head = ["method", *[f"{int(100 * x)} %" for x in RATIOS], "prune s (max)", "peak RSS / weights"]
    return [f"### {title}", "", *table(head, body), ""]


def listing(rows: list[Row], title: str, cols: list[tuple[str, Callable[[Row], str]]]) -> list[str]:
    body = [[fn(r) for _, fn in cols] for r in rows]
    return [f"### {title}", "", *table([c for c, _ in cols], body), ""]


def family_tables(rows: list[Row]) -> list[str]:
    fam: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        fam[r["family"]].append(r)
    out: list[str] = []
    if fam["structured"]:
        out += pivot(fam["structured"], "Structured (heads / FFN neurons), no training")
    if fam["depth"]:
        out += listing(fam["depth"], "Depth (whole decoder blocks)", [
            ("method", method_key), ("blocks removed", lambda r: str(r.get("blocks_removed", "–"))),
            ("block params removed", lambda r: _pct(r.get("block_removed"))), ("perplexity", fmt_ppl),
            ("prune s", lambda r: _num(r.get("prune_s"), 1)), ("RSS / weights", lambda r: _num(r.get("rss_over_weights"))),
        ])  # fmt: skip
    if fam["sparse"]:
        out += listing(fam["sparse"], "Weight level (unstructured, N:M)", [
            ("method", method_key), ("zeroed", lambda r: _pct(r.get("block_removed"))), ("perplexity", fmt_ppl),
            ("prune s", lambda r: _num(r.get("prune_s"), 1)), ("RSS / weights", lambda r: _num(r.get("rss_over_weights"))),
        ])  # fmt: skip
    if fam["distill"]:
        out += listing(fam["distill"], "After distillation", [
            ("method", method_key), ("ratio", lambda r: _pct(r.get("ratio"))),
            ("before", lambda r: f"{_num(r.get('ppl_before'))} ({_num(r.get('x_dense_before'))}×)"),
            ("after", fmt_ppl), ("minutes", lambda r: _num(r.get("minutes"), 1)),
            ("stopped by", lambda r: str(r.get("stopped_by", "–"))),
        ])  # fmt: skip
    if fam["torch_pruning"]:
        out += pivot(
            fam["torch_pruning"], "Torch-Pruning's LLM recipe (examples/LLMs/prune_llm.py)"
        )
    if fam["scale"]:
        out += listing(fam["scale"], "Scale: random 1.1 B LLaMA", [
            ("dtype", lambda r: str(r.get("dtype", "–"))), ("criterion", lambda r: str(r.get("criterion", "–"))),
            ("block params removed", lambda r: _pct(r.get("block_removed"))), ("prune s", lambda r: _num(r.get("prune_s"), 1)),
            ("peak RSS GB", lambda r: _num(r.get("peak_rss_gb"))), ("RSS / weights", lambda r: _num(r.get("rss_over_weights"))),
        ])  # fmt: skip
    return out


def _best(rows: list[Row], pred: Callable[[Row], bool]) -> Row | None:
    hit = [r for r in rows if finished(r) and pred(r)]
    return min(hit, key=lambda r: r["x_dense"]) if hit else None


def _verdict(ok: bool | None) -> str:
    return "**no data**" if ok is None else ("**met**" if ok else "**not met**")


def _limit_goal(rows: list[Row], text: str, limit: float, pred: Callable[[Row], bool]) -> str:
    best = _best(rows, pred)
    if best is None:
        return f"- {text}: {_verdict(None)}"
    got = f"best {method_key(best)}: {_num(best['ppl'])} = {_num(best['x_dense'])}× dense"
    return f"- {text}: {_verdict(best['x_dense'] <= limit)} ({got})"


def tp_goal(rows: list[Row], ratio: float = 0.2) -> str:
    text = f"≤ 0.5× Torch-Pruning's best at {int(100 * ratio)} %"
    pk = _best(rows, lambda r: r["family"] == "structured" and at_ratio(r, ratio))
    tp_rows = [r for r in rows if r["family"] == "torch_pruning" and at_ratio(r, ratio)]
    tp = _best(tp_rows, lambda r: True)
    timeouts = [r for r in tp_rows if not finished(r)]
    note = "; ".join(f"{r.get('config', r.get('method'))} {fmt_ppl(r)}" for r in timeouts)
    note = f"; did not finish: {note}" if note else ""
    if pk is None or tp is None:
        return f"- {text}: {_verdict(None)}{note}"
    got = f"prunekit {_num(pk['ppl'])} vs Torch-Pruning {method_key(tp)} {_num(tp['ppl'])} = {pk['ppl'] / tp['ppl']:.2g}×"
    return f"- {text}: {_verdict(pk['ppl'] <= 0.5 * tp['ppl'])} ({got}{note})"


def scale_goal(rows: list[Row]) -> str:
    text = "1.1 B: prune ≤ 60 s and peak RSS ≤ 1.3× weights"
    scale = [r for r in rows if r["family"] == "scale"]
    if not scale:
        return f"- {text}: {_verdict(None)}"
    by_dtype: dict[str, list[Row]] = defaultdict(list)
    for r in scale:
        by_dtype[str(r.get("dtype", "?"))].append(r)
    parts, oks = [], []
    for dtype, rs in sorted(by_dtype.items()):
        ok = any(
            (r.get("prune_s") or math.inf) <= 60 and (r.get("rss_over_weights") or math.inf) <= 1.3
            for r in rs
        )
        best = min(rs, key=lambda r: r.get("prune_s") or math.inf)
        parts.append(
            f"{dtype} {_verdict(ok)}: {_num(best.get('prune_s'), 1)} s, {_num(best.get('rss_over_weights'))}×"
        )
        oks.append(ok)
    return f"- {text}: {_verdict(all(oks))} ({'; '.join(parts)})"


def goal_lines(rows: list[Row]) -> list[str]:
    """The acceptance goals of issue #18, each met / not met / no data from the rows."""
    structured_20 = lambda r: r["family"] == "structured" and at_ratio(r, 0.2)  # noqa: E731
    return [
        _limit_goal(rows, "≤ 1.5× dense at 20 % structured, no training", 1.5, structured_20),
        tp_goal(rows),
        _limit_goal(rows, "≤ 1.25× dense after distillation", 1.25, lambda r: r["family"] == "distill"),
        _limit_goal(rows, "50 % unstructured ≤ 1.35× dense", 1.35,
                    lambda r: r["family"] == "sparse" and r.get("pattern", "unstructured") == "unstructured" and at_ratio(r, 0.5)),
        _limit_goal(rows, "2:4 ≤ 2× dense", 2.0, lambda r: r["family"] == "sparse" and r.get("pattern") == "2:4"),
        scale_goal(rows),
    ]  # fmt: skip


def render(rows: list[Row], *, plot_name: str | None = PLOT_NAME) -> str:
    """The markdown of the LLM section (without the markers)."""
    dense, measured = dense_ppl(rows)
    rows = with_x_dense(rows, dense)
    src = "the dense row" if measured else f"llm_common.DENSE_PPL (no dense row found): {dense}"
    files = sorted({r["_file"] for r in rows if "_file" in r})
    out = [
        "## Real LLM: SmolLM2-135M (issue #18)",
        "",
        f"Held-out perplexity, 16 windows of 512 tokens; dense **{_num(dense)}**; × dense from {src}.",
        f"Rows: {', '.join(f'`docs/bench/{f}`' for f in files) or 'none'} (2-core shared CPU).",
        "",
        "### Acceptance goals",
        "",
        *goal_lines(rows),
        "",
        *family_tables(rows),
    ]
    if plot_name:
        out += [f"![perplexity vs block params removed](bench/{plot_name})", ""]
    return "\n".join(out)


def update_doc(doc: Path, section: str) -> None:
    """Replace the text between the markers of ``doc`` (append markers + section if missing)."""
    text = doc.read_text() if doc.exists() else ""
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(
            re.escape(BEGIN) + r".*?" + re.escape(END), lambda _m: block, text, count=1, flags=re.S
        )
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    doc.write_text(text)


def plot(rows: list[Row], path: Path) -> None:
    """Log-scale perplexity against block params removed, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dense, _ = dense_ppl(rows)
    lines: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        if (
            finished(r)
            and r["family"] not in ("dense", "scale")
            and isinstance(r.get("block_removed"), int | float)
        ):
            lines[f"{r['family']}: {method_key(r)}"].append((100 * r["block_removed"], r["ppl"]))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for label, pts in sorted(lines.items()):
        xs, ys = zip(*sorted(pts), strict=True)
        ax.plot(xs, ys, marker="o", label=label)
    ax.axhline(dense, color="k", ls="--", lw=1, label=f"dense {dense:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("decoder-block parameters removed (zeroed for weight level), %")
    ax.set_ylabel("held-out perplexity (log)")
    ax.set_title("SmolLM2-135M: perplexity vs parameters removed")
    ax.set_xlim(left=0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-dir", default="docs/bench")
    ap.add_argument("--doc", default="docs/BENCHMARKS.md")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    rows = load_rows(Path(args.bench_dir))
    if not args.no_plot:
        plot(rows, Path(args.bench_dir) / PLOT_NAME)
    update_doc(Path(args.doc), render(rows, plot_name=None if args.no_plot else PLOT_NAME))
    print(f"{len(rows)} rows -> {args.doc}")


if __name__ == "__main__":
    main()
