"""A report as a list of blocks, rendered to self-contained HTML or to Markdown.

Both renderers see the same blocks, so the two files always say the same thing. HTML embeds
each figure as a base64 PNG data URI and carries its CSS inline: it opens offline and
fetches nothing. Markdown links each figure by its relative file name.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Heading", "Text", "Table", "Code", "Figure", "Block", "to_html", "to_markdown"]


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    """A paragraph (``kind="note"`` renders as a call-out)."""

    text: str
    kind: str = "p"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: list[bool] = field(default_factory=list)  # right-align these columns


@dataclass
class Code:
    text: str
    lang: str = ""


@dataclass
class Figure:
    path: Path
    caption: str


Block = Heading | Text | Table | Code | Figure

_CSS = """
body{font:15px/1.5 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;
 background:#f6f8fa;margin:0}
main{max-width:1060px;margin:0 auto;padding:24px 32px 64px;background:#fff;min-height:100vh}
h1{font-size:28px;margin:8px 0 4px}h2{font-size:21px;margin:36px 0 10px;padding-bottom:6px;
 border-bottom:1px solid #d0d7de}h3{font-size:17px;margin:22px 0 8px}
table{border-collapse:collapse;margin:10px 0 6px;font-size:14px}
th,td{border:1px solid #d0d7de;padding:5px 12px;text-align:left;vertical-align:top}
th{background:#f0f3f6}tr:nth-child(even) td{background:#fafbfc}td.num,th.num{text-align:right;
 font-variant-numeric:tabular-nums}
caption{caption-side:bottom;text-align:left;color:#57606a;font-size:13px;padding-top:4px}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:12px;overflow:auto;
 font-size:13px}
figure{margin:16px 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:13px}
.note{background:#fff8c5;border:1px solid #d4a72c66;border-radius:6px;padding:8px 12px}
.lead{font-size:17px}
"""


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        cls = {"note": ' class="note"', "lead": ' class="lead"'}.get(block.kind, "")
        return f"<p{cls}>{html.escape(block.text)}</p>"
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text)}</code></pre>"
    if isinstance(block, Figure):
        data = base64.b64encode(block.path.read_bytes()).decode("ascii")
        alt = html.escape(block.caption)
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{alt}</figcaption></figure>"
        )
    numeric = block.numeric + [False] * (len(block.headers) - len(block.numeric))
    attrs = [' class="num"' if n else "" for n in numeric]
    head = "".join(f"<th{a}>{html.escape(h)}</th>" for a, h in zip(attrs, block.headers))
    body = "".join(
        "<tr>" + "".join(f"<td{a}>{html.escape(v)}</td>" for a, v in zip(attrs, row)) + "</tr>"
        for row in block.rows
    )
    caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(title: str, blocks: list[Block]) -> str:
    """A complete, self-contained HTML page (inline CSS, images as data URIs).

    Example:
        >>> page = to_html("t", [Heading("Summary"), Table(["a"], [["1 < 2"]])])
        >>> "<h2>Summary</h2>" in page, "1 &lt; 2" in page
        (True, True)
    """
    body = "\n".join(_html_block(b) for b in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>\n<h1>{html.escape(title)}</h1>\n{body}\n</main></body></html>\n"
    )


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Text):
        return f"> {block.text}" if block.kind == "note" else block.text
    if isinstance(block, Code):
        fence = "````" if "```" in block.text else "```"
        return f"{fence}{block.lang}\n{block.text.rstrip()}\n{fence}"
    if isinstance(block, Figure):
        return f"![{block.caption}]({block.path.name})\n\n*{block.caption}*"
    numeric = block.numeric + [False] * (len(block.headers) - len(block.numeric))
    lines = [
        "| " + " | ".join(_md_cell(h) for h in block.headers) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in block.rows]
    if block.caption:
        lines.append(f"\n*{block.caption}*")
    return "\n".join(lines)


def to_markdown(title: str, blocks: list[Block]) -> str:
    """The same content as Markdown; figures are relative links to their PNG files.

    Example:
        >>> print(to_markdown("t", [Table(["k", "v"], [["a|b", "1"]], numeric=[False, True])]))
        # t
        <BLANKLINE>
        | k | v |
        |---|---:|
        | a\\|b | 1 |
        <BLANKLINE>
    """
    return "\n\n".join([f"# {title}"] + [_md_block(b) for b in blocks]) + "\n"
