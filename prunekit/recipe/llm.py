"""LLM recipes (``kind: llm``): prune a decoder language model on a text dataset.

A recipe with the top-level key ``kind: llm`` is validated here instead of by
:class:`~prunekit.recipe.schema.Recipe` (whose sections describe classifiers)::

    kind: llm
    name: smollm2-heads-ffn
    model: smollm2-135m            # a built-in name, or a local Hugging Face directory
    data: {name: shakespeare, calibration_sequences: 32, seq_len: 512, seed: 0}
    prune:                         # one step, or a list of steps applied in order
      method: structured           # structured | depth | sparse
      criterion: flap
      head_ratio: 0.0
      target: 0.2
    recovery: {distill: {...}}     # optional; see LLMDistillSpec
    evaluation: {seq_len: 512, windows: 16, agreement: true, speed: {new_tokens: 32}}
    output: {dir: "runs/{name}", save_model: true}

The step ``method`` selects the library function: ``structured`` is
:func:`prunekit.llm.prune_blockwise`, ``depth`` :func:`prunekit.llm.prune_depth`, ``sparse``
:func:`prunekit.llm.sparsify`. Options left out take the function's own defaults.

As for classic recipes, reading and validating imports no torch for structure, types and
paths; the names of models, datasets and criteria are then checked against the live
registries. Errors read ``recipe.yaml:7: prune.head_rato: unknown key 'head_rato'; valid
keys: method, criterion, ...``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import RecipeError
from .llm_schema import (
    BASE_DIR,
    LLM_KIND,
    LLMDistillSpec,
    LLMEvaluationSpec,
    LLMModelSpec,
    LLMOutputSpec,
    LLMRecipe,
    LLMRecoverySpec,
    SampleSpec,
    SpeedSpec,
    TextDataSpec,
    looks_like_path,
)
from .llm_steps import STEP_METHODS, DepthStep, PruneStep, SparseStep, StructuredStep
from .marked import Marked, load_marked
from .schema import STRUCTURE_ONLY, _Section

__all__ = [
    "LLM_KIND",
    "STEP_METHODS",
    "DepthStep",
    "LLMDistillSpec",
    "LLMEvaluationSpec",
    "LLMModelSpec",
    "LLMOutputSpec",
    "LLMRecipe",
    "LLMRecoverySpec",
    "PruneStep",
    "SampleSpec",
    "SparseStep",
    "SpeedSpec",
    "StructuredStep",
    "TextDataSpec",
    "is_llm_recipe",
    "load_llm_recipe",
    "looks_like_path",
    "parse_llm_recipe",
]

_TYPE_TAG = re.compile(r"^(str|int|float|bool|list|dict|none|function-.*|.*\[.*\])$")


def _clean_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """The error location as the user wrote it: pydantic's type tags and the step's
    discriminator tag dropped, and the list index dropped when ``prune`` is one mapping."""
    parts = [p for p in loc if not (isinstance(p, str) and _TYPE_TAG.match(p))]
    if len(parts) >= 2 and parts[0] == "prune" and isinstance(parts[1], int):
        if len(parts) >= 3 and parts[2] in STEP_METHODS:
            del parts[2]
        if isinstance(data, dict) and isinstance(data.get("prune"), dict):
            del parts[1]
    return tuple(parts)


def _step_model(data: Any, loc: tuple[Any, ...]) -> type[_Section] | None:
    """The step class an error inside ``prune`` belongs to (by the tag in ``loc``)."""
    models: dict[str, type[_Section]] = {
        "structured": StructuredStep, "depth": DepthStep, "sparse": SparseStep,
    }  # fmt: skip
    return next((models[p] for p in loc if isinstance(p, str) and p in models), None)


_SECTIONS: dict[str, type[_Section]] = {
    "model": LLMModelSpec, "data": TextDataSpec, "recovery": LLMRecoverySpec,
    "evaluation": LLMEvaluationSpec, "output": LLMOutputSpec,
}  # fmt: skip
_SUBSECTIONS: dict[str, type[_Section]] = {
    "distill": LLMDistillSpec, "speed": SpeedSpec, "sample": SampleSpec,
}  # fmt: skip


def _valid_keys(loc: tuple[Any, ...], clean: tuple[Any, ...]) -> str:
    named = [p for p in clean[:-1] if isinstance(p, str)]
    model: type[_Section] | None = LLMRecipe
    if named and named[0] == "prune":
        model = _step_model(None, loc)
    elif named:
        model = _SUBSECTIONS.get(named[-1]) if len(named) > 1 else _SECTIONS.get(named[0])
    return ", ".join(model.model_fields) if model is not None else "?"


def _message(error: dict[str, Any], clean: tuple[Any, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {clean[-1]!r}; valid keys: {_valid_keys(tuple(error['loc']), clean)}"
    if kind == "missing":
        if clean == ("kind",):
            return "is required: write kind: llm"
        return "is required but missing; add it"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = (error.get("ctx") or {}).get("tag")
        got = f"{tag!r} is not a pruning method" if tag is not None else "is missing"
        return f"{got}; valid: {', '.join(STEP_METHODS)}"
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    value = error.get("input")
    if kind != "value_error" and not isinstance(value, (dict, list)):
        msg = f"{msg}, got {value!r}"
    return msg


def _format(exc: ValidationError, marked: Marked) -> str:
    lines = []
    for error in exc.errors():
        clean = _clean_loc(tuple(error["loc"]), marked.data)
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            clean = (*clean, "method")
        dotted = ".".join(str(p) for p in clean) or "(recipe)"
        lines.append(f"{marked.where(clean)}: {dotted}: {_message(dict(error), clean)}")
    return "\n".join(lines)


def _validate(marked: Marked, context: dict[str, Any]) -> LLMRecipe:
    try:
        return LLMRecipe.model_validate(marked.data, context=context)
    except ValidationError as exc:
        raise RecipeError(_format(exc, marked)) from None


def parse_llm_recipe(
    text: str, *, source: str = "<recipe>", base_dir: str | Path | None = None
) -> LLMRecipe:
    """Validate LLM recipe YAML ``text`` (``kind: llm``).

    Args:
        text: The YAML document.
        source: File name used in error messages.
        base_dir: Directory relative model paths resolve against; default the working
            directory.

    Returns:
        The validated :class:`LLMRecipe`.

    Raises:
        RecipeError: Invalid YAML, an unknown key, a wrong type or value (one line each,
            with file, line, key and the valid choices).

    Example:
        >>> parse_llm_recipe("kind: llm\\nmodel: smollm2-135m\\nprune: {method: depht}\\n",
        ...                  source="r.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        prunekit.errors.RecipeError: r.yaml:3: prune.method: 'depht' is not a pruning method; valid: structured, depth, sparse
    """
    marked = load_marked(text, source)
    if not isinstance(marked.data, dict):
        raise RecipeError(
            f"{marked.where(())}: an LLM recipe is a mapping with kind: llm, model, data, "
            f"prune ...; got {type(marked.data).__name__}"
        )
    kind = marked.data.get("kind")
    if kind != LLM_KIND:
        raise RecipeError(
            f"{marked.where(('kind',))}: kind: {kind!r} is not a recipe kind; valid: "
            f"{LLM_KIND} (leave kind out for a classic recipe)"
        )
    base = Path.cwd() if base_dir is None else Path(base_dir)
    context: dict[str, Any] = {STRUCTURE_ONLY: True, BASE_DIR: base}
    _validate(marked, context)  # structure, types and paths: no torch import yet
    return _validate(marked, {BASE_DIR: base}).located(base, source)


def is_llm_recipe(path: str | Path) -> bool:
    """Whether the file at ``path`` is a mapping with a top-level ``kind`` key (then
    :func:`load_llm_recipe` reads it; an unreadable file is left to the classic loader,
    which reports it)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "kind" in data


def load_llm_recipe(path: str | Path) -> LLMRecipe:
    """Read and validate the LLM recipe file ``path`` (relative paths resolve next to it).

    Raises:
        RecipeError: The file is missing or unreadable, or the recipe is invalid.
    """
    file = Path(path)
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(
            f"cannot read recipe {str(file)!r} ({exc}); pass a UTF-8 YAML file"
        ) from exc
    return parse_llm_recipe(text, source=str(file), base_dir=file.resolve().parent)
