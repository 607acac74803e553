"""Every ```python block of README.md and docs/*.md runs as written, each in a fresh namespace.

A block is run on its own (no state shared with the blocks before it), in a temporary working
directory (blocks may write files such as ``pruned/``). Blocks fenced as anything else
(```bash, ```text ...) are shown, not run; every fence must name its language, so a Python
block cannot escape this test by being left untagged.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON = {"python", "py", "python3"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it opens (1-based line of the fence), its language, code."""

    path: Path
    line: int
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (CommonMark fences: ``` or ~~~, 3 or more)."""
    blocks: list[Block] = []
    opened: tuple[int, str, str, str] | None = None  # line, fence, language, indent
    body: list[str] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(text)
        if opened is None:
            if match:
                info = match["info"].strip()
                opened = (number, match["fence"], info.split()[0] if info else "", match["indent"])
                body = []
            continue
        line, fence, language, indent = opened
        if match and match["fence"].startswith(fence) and not match["info"].strip():
            blocks.append(Block(path, line, language.lower(), "\n".join(body) + "\n"))
            opened = None
        else:
            body.append(text[len(indent) :] if text.startswith(indent) else text)
    if opened is not None:
        raise AssertionError(f"{path.relative_to(ROOT)}:{opened[0]}: code fence never closed")
    return blocks


ALL_BLOCKS = [b for path in DOCS for b in fenced_blocks(path)]
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.language in PYTHON]


def test_fence_parser_reads_languages_and_lines(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("text\n```python\na = 1\n```\n\n~~~bash\nls\n~~~\n```\nuntagged\n```\n")
    blocks = fenced_blocks(doc)
    assert [(b.line, b.language, b.code) for b in blocks] == [
        (2, "python", "a = 1\n"),
        (6, "bash", "ls\n"),
        (9, "", "untagged\n"),
    ]


def test_the_docs_have_python_blocks() -> None:
    assert DOCS[0].name == "README.md" and len(PYTHON_BLOCKS) >= 4
    assert {b.path.name for b in PYTHON_BLOCKS} >= {"README.md"}


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.where for b in ALL_BLOCKS])
def test_every_fence_names_its_language(block: Block) -> None:
    assert block.language, (
        f"{block.where}: a code fence without a language; tag it ```python (it is then run by "
        "this test) or ```bash / ```text (shown only)"
    )


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_python_block_runs(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    code = compile(block.code, block.where, "exec")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        exec(code, namespace)  # noqa: S102 - running the documentation is the point
    capsys.readouterr()  # the blocks print tables; keep the test log quiet
