"""Read a recipe file into a :class:`~prunekit.recipe.schema.Recipe`, with line-exact errors.

Every problem becomes a :class:`~prunekit.errors.RecipeError` whose lines read
``recipe.yaml:12: prune.importance: 'tayler' is not a criterion; valid: l1, l2, ...``: the
file and line of the offending key, its dotted path, what is wrong and the valid choices.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import RecipeError
from .marked import Marked, load_marked
from .pyimport import ResolveError, referenced_file
from .schema import STRUCTURE_ONLY, Recipe

__all__ = ["check_paths", "load_recipe", "parse_recipe"]


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``loc`` (``None`` when it is not a section)."""
    model: type[BaseModel] | None = Recipe
    for part in loc[:-1]:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        model = _inner_model(info.annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def _message(error: dict[str, Any]) -> str:
    kind, loc = error["type"], tuple(error["loc"])
    if kind == "extra_forbidden":
        model = _section_model(loc)
        valid = ", ".join(model.model_fields) if model is not None else "?"
        return f"unknown key {loc[-1]!r}; valid keys: {valid}"
    if kind == "missing":
        return "is required but missing; add it"
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
        msg = f"{msg}, got {error.get('input')!r}"
    return msg


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _is_type_tag(part: Any) -> bool:
    """Pydantic adds union members (``str``, ``list[str]``) to an error's location."""
    return isinstance(part, str) and ("[" in part or part in _TYPE_TAGS)


def _format(exc: ValidationError, marked: Marked) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not _is_type_tag(p))
        dotted = ".".join(str(p) for p in loc) or "(recipe)"
        lines.append(f"{marked.where(loc)}: {dotted}: {_message(dict(error))}")
    return "\n".join(lines)


def parse_recipe(
    text: str, *, source: str = "<recipe>", base_dir: str | Path | None = None
) -> Recipe:
    """Validate recipe YAML ``text``.

    Args:
        text: The YAML document.
        source: File name used in error messages.
        base_dir: Directory relative paths (``python:./x.py:f``, ``weights``) resolve
            against; default the working directory.

    Returns:
        The validated :class:`Recipe`.

    Raises:
        RecipeError: Invalid YAML, an unknown key, a wrong type or value (one line each,
            with file, line, key and the valid choices).

    Example:
        >>> r = parse_recipe("model: {name: mlp}\\ndata: {name: iris}\\nprune: {ratio: 0.5}\\n")
        >>> r.model.name, r.prune.ratio
        ('mlp', 0.5)
        >>> parse_recipe("model: {name: mlp}\\ndata: {name: iris}\\nprune: {rato: 0.5}\\n",
        ...              source="r.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        prunekit.errors.RecipeError: r.yaml:3: prune.rato: unknown key 'rato'; valid keys: ...
    """
    marked = load_marked(text, source)
    if not isinstance(marked.data, dict):
        raise RecipeError(
            f"{marked.where(())}: a recipe is a mapping with sections model, data, prune ...; "
            f"got {type(marked.data).__name__}. Run `prunekit init` for a starter recipe"
        )
    base = Path.cwd() if base_dir is None else Path(base_dir)
    # Structure, types and paths first: these need no registry, hence no torch import.
    check_paths(_validate(marked, {STRUCTURE_ONLY: True}).located(base, source), marked)
    return _validate(marked, None).located(base, source)


def _validate(marked: Marked, context: dict[str, Any] | None) -> Recipe:
    try:
        return Recipe.model_validate(marked.data, context=context)
    except ValidationError as exc:
        raise RecipeError(_format(exc, marked)) from None


def check_paths(recipe: Recipe, marked: Marked | None = None) -> None:
    """Check that the files a recipe names exist (``python:./file.py:fn`` model and data
    factories, ``model.weights``) before any data is loaded or heavy module imported.

    Raises:
        ResolveError: a named file does not exist (the message has the file, line and key).

    Example:
        >>> check_paths(parse_recipe("model: {name: mlp}\\ndata: {name: iris}\\n"))
    """
    spec = recipe.model
    named = [
        (("model", "name"), referenced_file(spec.name, recipe.base_dir), "python file"),
        (("data", "name"), referenced_file(recipe.data.name, recipe.base_dir), "python file"),
        (("model", "weights"), recipe.path(spec.weights) if spec.weights else None, "weights"),
    ]
    for key, path, what in named:
        if path is not None and not path.is_file():
            where = marked.where(key) if marked is not None else recipe.source
            raise ResolveError(
                f"{where}: {'.'.join(key)}: {what} {str(path)!r} does not exist; fix the "
                "path (relative paths are relative to the recipe's directory)"
            )


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate the recipe file ``path`` (relative paths resolve next to it).

    Raises:
        RecipeError: The file is missing or unreadable, or the recipe is invalid.
    """
    file = Path(path)
    if not file.is_file():
        raise RecipeError(
            f"recipe file {str(file)!r} does not exist; check the path or run "
            "`prunekit init recipe.yaml` to write a starter recipe"
        )
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(
            f"cannot read recipe {str(file)!r} ({exc}); pass a UTF-8 YAML file"
        ) from exc
    return parse_recipe(text, source=str(file), base_dir=file.resolve().parent)
