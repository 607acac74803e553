"""Language models in the pipeline: load one by name or directory, read a text dataset, and
measure it (perplexity, agreement with the dense model, batch-1 speed, a greedy sample).

Shared by ``prunekit prune`` on an LLM recipe (:mod:`.llm`) and ``prunekit evaluate`` on a
language model, so both report the same numbers under the same protocol.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.text import calibration_batch, load_text, text_works
from ..errors import ConfigError, DataError
from ..evaluation import generation_speed, next_token_agreement, perplexity
from ..recipe.llm import LLMRecipe, SampleSpec, SpeedSpec, looks_like_path

__all__ = [
    "DTYPES",
    "RecipeTexts",
    "TextProtocol",
    "block_counts",
    "evaluate_language",
    "load_language_model",
    "load_saved_model",
    "recipe_protocol",
    "recipe_texts",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""Recipe ``model.dtype`` names."""


@dataclass(frozen=True)
class TextProtocol:
    """How perplexity and agreement are measured: windows of ``seq_len`` tokens every
    ``stride`` (default ``seq_len``), the first ``windows`` of them (``None``: all), run
    ``batch_size`` at a time, on the evaluation works of text dataset ``dataset``."""

    dataset: str
    seq_len: int
    stride: int | None = None
    windows: int | None = None
    batch_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` with the evaluation works named."""
        return {**asdict(self), "works": list(text_works(self.dataset, split="evaluation"))}


def recipe_protocol(recipe: LLMRecipe) -> TextProtocol:
    """The evaluation protocol an LLM recipe asks for."""
    ev = recipe.evaluation
    return TextProtocol(recipe.data.name, recipe.eval_seq_len, ev.stride, ev.windows,
                        ev.batch_size)  # fmt: skip


def load_language_model(
    name: str, *, base_dir: str | Path | None = None, dtype: str = "float32"
) -> tuple[nn.Module, Any]:
    """``(model, tokenizer)`` from a built-in name (:func:`prunekit.models.load_llm`) or a
    local Hugging Face directory (``save_pretrained`` output; one written by
    :func:`prunekit.export.save_pretrained` with a pruning record is rebuilt exactly).

    Raises:
        ConfigError: ``dtype`` is not ``float32`` or ``bfloat16``, or ``name`` is neither a
            built-in name nor a directory (the message lists the built-in names).
        DataError: The directory has no ``config.json`` or does not load (the message
            names it), or the built-in model's package is missing.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype={dtype!r} is not one of {', '.join(DTYPES)}")
    folder = Path(name).expanduser()
    if base_dir is not None and not folder.is_absolute():
        folder = Path(base_dir) / folder
    if not looks_like_path(name) and not folder.is_dir():
        from ..models import available_llms, load_llm

        if name.strip().lower() not in available_llms():
            raise ConfigError(
                f"model {name!r} is neither a built-in language model ({', '.join(available_llms())}) "
                f"nor a directory (looked for {str(folder)!r})"
            )
        return load_llm(name, dtype=DTYPES[dtype])
    return _load_directory(folder, DTYPES[dtype])


def _transformers(folder: Path) -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise DataError(
            f"loading {folder} needs transformers ({exc}); pip install 'prunekit[hf]'"
        ) from exc


def load_saved_model(folder: str | Path, *, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The causal LM saved in ``folder`` (``save_pretrained``; a pruning record written by
    :func:`prunekit.export.save_pretrained` is replayed), in eval mode.

    Raises:
        DataError: There is no ``config.json`` or the model does not load.
    """
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise DataError(
            f"{str(path)!r} is not a Hugging Face model directory (no config.json); pass a "
            "folder written by save_pretrained, a run directory's model/, or a built-in name"
        )
    from ..export import from_pretrained

    auto = _transformers(path).AutoModelForCausalLM
    try:
        model = from_pretrained(auto, path, local_files_only=True, dtype=dtype).to(dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"the language model in {path} does not load ({exc})") from exc
    return model.eval()


def _load_directory(folder: Path, dtype: torch.dtype) -> tuple[nn.Module, Any]:
    model = load_saved_model(folder, dtype=dtype)
    try:
        tokenizer = _transformers(folder).AutoTokenizer.from_pretrained(
            str(folder), local_files_only=True
        )
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"the tokenizer in {folder} does not load ({exc}); save it beside the model "
            "(tokenizer.save_pretrained)"
        ) from exc
    return model, tokenizer


@dataclass(frozen=True)
class RecipeTexts:
    """The token data of an LLM recipe: the calibration works' stream, the calibration
    batch drawn from it, and the held-out works' stream (evaluation)."""

    calibration_stream: torch.Tensor
    calibration: torch.Tensor
    held_out: torch.Tensor


def recipe_texts(recipe: LLMRecipe, tokenizer: Any) -> RecipeTexts:
    """Tokenise an LLM recipe's text: ``data.calibration_sequences`` windows of
    ``data.seq_len`` tokens of the calibration works drawn by ``data.seed``, and the
    held-out works' stream."""
    spec = recipe.data
    stream = load_text(spec.name, tokenizer=tokenizer, split="calibration")
    batch = calibration_batch(stream, num_sequences=spec.calibration_sequences,
                              seq_len=spec.seq_len, seed=spec.seed)  # fmt: skip
    held_out = load_text(spec.name, tokenizer=tokenizer, split="evaluation")
    return RecipeTexts(stream, batch, held_out)


def block_counts(model: nn.Module) -> dict[str, int]:
    """Parameters of the whole model, of its decoder blocks, and the blocks' non-zero
    weights (what weight-level sparsity lowers)."""
    from ..llm import decoder_layers

    layers = decoder_layers(model)
    block = sum(p.numel() for p in layers.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in layers.parameters())
    return {"params": sum(p.numel() for p in model.parameters()), "block_params": block,
            "block_nonzero": nonzero, "blocks": len(layers)}  # fmt: skip


def _sample(model: nn.Module, tokenizer: Any, spec: SampleSpec) -> str:
    """The greedy continuation of ``spec.prompt`` (the new tokens only, decoded)."""
    ids = tokenizer(spec.prompt, return_tensors="pt")
    device = next(model.parameters()).device
    ids = {k: v.to(device) for k, v in ids.items()}
    generate: Any = getattr(model, "generate", None)
    if generate is None:
        return ""
    with torch.inference_mode():
        out = generate(**ids, max_new_tokens=spec.new_tokens, do_sample=False)
    return str(tokenizer.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True))


def evaluate_language(
    model: nn.Module,
    tokens: torch.Tensor,
    protocol: TextProtocol,
    *,
    reference: nn.Module | None = None,
    speed: SpeedSpec | None = None,
    sample: tuple[Any, SampleSpec] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Measure ``model`` on the evaluation stream ``tokens`` under ``protocol``.

    Args:
        model: A causal LM.
        tokens: The evaluation token stream (:func:`recipe_texts`).
        protocol: Windows and batch size.
        reference: The dense model: adds next-token ``agreement`` at the same positions.
        speed: Adds batch-1 ``prefill_tokens_per_s`` / ``decode_tokens_per_s``.
        sample: ``(tokenizer, spec)``: adds the greedy continuation of ``spec.prompt``.
        progress: Show progress bars over the windows.

    Returns:
        Flat scalars for the report's summary (``perplexity``, ``agreement``, ``params``)
        and the details under ``"language"``: the perplexity protocol and counts, decoder
        block counts, ``speed`` (:class:`~prunekit.evaluation.GenerationSpeed` as a dict)
        and ``sample``.
    """
    windows: dict[str, Any] = {"seq_len": protocol.seq_len, "stride": protocol.stride,
                               "batch_size": protocol.batch_size,
                               "max_windows": protocol.windows}  # fmt: skip
    ppl = perplexity(model, tokens, progress=progress, **windows)
    counts = block_counts(model)
    result: dict[str, Any] = {"perplexity": ppl.perplexity}
    details: dict[str, Any] = {**ppl.to_dict(), **counts, "protocol": protocol.to_dict()}
    if reference is not None:
        result["agreement"] = next_token_agreement(reference, model, tokens, progress=progress,
                                                   **windows)  # fmt: skip
    if speed is not None:
        measured = generation_speed(
            model, prompt_tokens=speed.prompt_tokens, new_tokens=speed.new_tokens,
            repeats=speed.repeats, warmup=speed.warmup, threads=speed.threads,
        )  # fmt: skip
        details["speed"] = measured.to_dict()
    if sample is not None:
        tokenizer, spec = sample
        details["sample"] = {"prompt": spec.prompt, "text": _sample(model, tokenizer, spec)}
    result["params"] = counts["params"]
    result["language"] = details
    return result
