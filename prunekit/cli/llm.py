"""The CLI's language-model paths: ``prunekit prune`` on an LLM recipe (``kind: llm``) and
``prunekit evaluate`` on a causal language model.

``prunekit evaluate --model smollm2-135m --data shakespeare --seq-len 512 --windows 16``
measures one model (a built-in name, a Hugging Face directory, or a run directory written
by ``prunekit prune`` on an LLM recipe): perplexity over fixed-length windows of the
dataset's held-out works, batch-1 prefill and decode tokens/s, and, with ``--reference``
(default for a run directory: the run's dense model), next-token agreement with it.
``prunekit evaluate recipe.yaml [--model RUN_DIR]`` does the same under the recipe's model,
data and evaluation settings. Nothing here imports torch until a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ConfigError
from .output import Output, fail_on_errors, interrupt_exit

if TYPE_CHECKING:
    from ..pipeline.llm import LLMRunResult
    from ..pipeline.llm_eval import TextProtocol

__all__ = [
    "DataOpt",
    "ReferenceOpt",
    "SeqLenOpt",
    "SpeedOpt",
    "StrideOpt",
    "WindowsOpt",
    "evaluate_llm",
    "prune_llm",
    "wants_llm",
]

DataOpt = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="A text dataset (e.g. shakespeare): evaluate the language "
        "model --model on its held-out works.",
    ),  # fmt: skip
]
SeqLenOpt = Annotated[
    int | None,
    typer.Option(
        "--seq-len",
        min=2,
        help="Perplexity window length in tokens (default 512, or the recipe's).",
    ),  # fmt: skip
]
StrideOpt = Annotated[
    int | None,
    typer.Option(
        "--stride",
        min=1,
        help="Tokens between window starts (default: seq-len, non-overlapping windows).",
    ),  # fmt: skip
]
WindowsOpt = Annotated[
    int | None,
    typer.Option(
        "--windows", min=1, help="Score the first N windows (default 16, or the recipe's)."
    ),  # fmt: skip
]
ReferenceOpt = Annotated[
    str | None,
    typer.Option(
        "--reference",
        help="The dense model for next-token agreement: a built-in "
        "name or a directory (default for a run directory: its dense model).",
    ),  # fmt: skip
]
SpeedOpt = Annotated[
    bool, typer.Option("--speed/--no-speed", help="Measure batch-1 prefill/decode tokens/s.")
]

_DEFAULT_SEQ_LEN, _DEFAULT_WINDOWS = 512, 16


def wants_llm(recipe: Path | None, data: str | None) -> bool:
    """Whether ``prunekit evaluate``/``prune`` takes the language-model path: no recipe, a
    ``--data`` text dataset, or a recipe with a top-level ``kind``."""
    from ..recipe.llm import is_llm_recipe

    return recipe is None or data is not None or is_llm_recipe(recipe)


# --------------------------------------------------------------------------- prune


def prune_llm(out: Output, recipe: Path, out_dir: Path | None, mode: str, resume: bool) -> None:
    """``prunekit prune`` on an LLM recipe: run it, show the before/after table, print the
    report path (or, with ``--json``, the run summary)."""
    with fail_on_errors(out):
        if mode != "prune":
            raise ConfigError(
                f"{recipe}: an LLM recipe (kind: llm) runs with `prunekit prune {recipe}`; "
                f"`prunekit {mode}` takes classic recipes only"
            )
        from ..recipe.llm import load_llm_recipe

        loaded = load_llm_recipe(recipe)
        from ..pipeline import RunInterrupted
        from ..pipeline.llm import run_llm

        try:
            result = run_llm(loaded, out_dir=out_dir, progress=out.progress, log=out.say,
                             resume=resume)  # fmt: skip
        except RunInterrupted as exc:
            interrupt_exit(out, exc, f"prunekit prune {recipe} --resume")
    for note in result.notes:
        out.warn(note)
    show_llm_run(out, result)
    out.result(result.to_dict(), str(result.report))


def _cell(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _rows(evals: list[dict[str, Any]]) -> list[list[str]]:
    """One row per metric, one column per evaluation (``evaluate_language`` dicts)."""

    def lang(e: dict[str, Any], k: str) -> Any:
        return e.get("language", {}).get(k)

    def speed(e: dict[str, Any], k: str) -> Any:
        return (lang(e, "speed") or {}).get(k)

    specs: list[tuple[str, Any, str]] = [
        ("perplexity", lambda e: e.get("perplexity"), ".3f"),
        ("next-token agreement", lambda e: e.get("agreement"), ".2%"),
        ("params", lambda e: e.get("params"), ","),
        ("decoder blocks", lambda e: lang(e, "blocks"), "d"),
        ("decoder-block params", lambda e: lang(e, "block_params"), ","),
        ("non-zero block weights", lambda e: lang(e, "block_nonzero"), ","),
        ("prefill tokens/s (batch 1)", lambda e: speed(e, "prefill_tokens_per_s"), ",.1f"),
        ("decode tokens/s (batch 1)", lambda e: speed(e, "decode_tokens_per_s"), ",.1f"),
    ]  # fmt: skip
    rows = []
    for label, get, fmt in specs:
        values = [get(e) for e in evals]
        if any(v is not None for v in values):
            rows.append([label, *(_cell(v, fmt) for v in values)])
    return rows


def _protocol_line(evaluation: dict[str, Any]) -> str:
    lang = evaluation["language"]
    proto = lang.get("protocol", {})
    return (
        f"perplexity on the held-out works of {proto.get('dataset')} "
        f"({', '.join(proto.get('works', []))}): {lang['windows']} windows of "
        f"{lang['seq_len']} tokens, stride {lang['stride']}, {lang['tokens']:,} scored tokens"
    )


def show_llm_run(out: Output, result: LLMRunResult) -> None:
    """The dense/pruned table of an LLM run, its steps and the report path."""
    out.table("language model: dense -> pruned", ["metric", "dense", "pruned"],
              _rows([result.baseline, result.pruned]))  # fmt: skip
    out.say(_protocol_line(result.pruned))
    for i, step in enumerate(result.steps):
        out.say(f"step {i + 1} ({step['method']}): {step['summary']}")
    if result.recovery:
        out.say(f"recovery: {result.recovery.get('summary', '')}")
    out.say(f"report: {result.report}")


# --------------------------------------------------------------------------- evaluate


def _run_info(model: str) -> tuple[str, dict[str, Any] | None]:
    """``(model source, the run's llm_run.json)`` for a run directory, else ``(model, None)``."""
    path = Path(model)
    if path.name == "model" and (path.parent / "llm_run.json").is_file():
        path = path.parent  # the run's model/ folder itself
    info_file = path / "llm_run.json"
    if not info_file.is_file():
        return model, None
    info = json.loads(info_file.read_text())
    return str(path / "model"), info


def _protocol(
    data: str | None, info: dict[str, Any] | None, seq_len: int | None, stride: int | None,
    windows: int | None,
) -> TextProtocol:  # fmt: skip
    from ..data.text import available_text_datasets, is_text_dataset
    from ..pipeline.llm_eval import TextProtocol

    saved = (info or {}).get("protocol", {})
    dataset = data or saved.get("dataset")
    if dataset is None:
        raise ConfigError(
            "prunekit evaluate without a recipe evaluates a language model and needs --data "
            f"DATASET (a text dataset: {', '.join(available_text_datasets())}); to evaluate "
            "a classifier run, pass its recipe too"
        )
    if not is_text_dataset(dataset):
        raise ConfigError(
            f"--data {dataset!r} is not a text dataset; valid: "
            f"{', '.join(available_text_datasets())}"
        )
    return TextProtocol(
        dataset, seq_len or saved.get("seq_len") or _DEFAULT_SEQ_LEN,
        stride if stride is not None else (saved.get("stride") if seq_len is None else None),
        windows or saved.get("windows", _DEFAULT_WINDOWS),
    )  # fmt: skip


def evaluate_llm(  # noqa: PLR0913  (one keyword per CLI option)
    out: Output,
    *,
    recipe: Path | None,
    model: str | None,
    data: str | None,
    reference: str | None,
    seq_len: int | None,
    stride: int | None,
    windows: int | None,
    speed: bool,
) -> None:
    """``prunekit evaluate`` on a language model (module docstring)."""
    with fail_on_errors(out):
        if recipe is not None:
            model, reference, protocol, base = _from_recipe(recipe, model, reference, seq_len,
                                                            stride, windows)  # fmt: skip
        else:
            if model is None:
                raise ConfigError(
                    "prunekit evaluate needs a recipe, or --model NAME|DIR --data DATASET for "
                    "a language model (e.g. --model smollm2-135m --data shakespeare)"
                )
            model, info = _run_info(model)
            if reference is None and info is not None:
                reference = info.get("model")
            protocol, base = _protocol(data, info, seq_len, stride, windows), None
        assert model is not None
        data_out = _measure(out, model, reference, protocol, speed, base)
    names = [n for n in ("reference", "model") if data_out.get(n) is not None]
    evals = [data_out[n] for n in names]
    header = ["metric", *(f"{n}: {data_out[n]['source']}" for n in names)]
    out.table("language model evaluation", header, _rows(evals))
    out.say(_protocol_line(evals[-1]))
    out.result(data_out)


def _from_recipe(
    recipe: Path, model: str | None, reference: str | None, seq_len: int | None,
    stride: int | None, windows: int | None,
) -> tuple[str, str | None, TextProtocol, Path]:  # fmt: skip
    """(model, reference, protocol, base dir) of ``prunekit evaluate recipe.yaml``: the
    recipe's model alone, or ``--model`` against it."""
    from ..pipeline.llm_eval import TextProtocol, recipe_protocol
    from ..recipe.llm import load_llm_recipe

    loaded = load_llm_recipe(recipe)
    proto = recipe_protocol(loaded)
    proto = TextProtocol(
        proto.dataset, seq_len or proto.seq_len, stride if stride is not None else proto.stride,
        windows or proto.windows, proto.batch_size,
    )  # fmt: skip
    dense = str(loaded.path(loaded.model.name)) if loaded.model.is_directory else loaded.model.name
    if model is None:
        return dense, reference, proto, loaded.base_dir
    candidate, _ = _run_info(model)
    return candidate, reference or dense, proto, loaded.base_dir


def _measure(
    out: Output, model: str, reference: str | None, protocol: TextProtocol, speed: bool,
    base: Path | None,
) -> dict[str, Any]:  # fmt: skip
    from ..data.text import load_text
    from ..pipeline.llm_eval import evaluate_language, load_language_model
    from ..recipe.llm import SpeedSpec

    candidate, tokenizer = load_language_model(model, base_dir=base)
    out.say(f"model {model}: {sum(p.numel() for p in candidate.parameters()):,} params")
    tokens = load_text(protocol.dataset, tokenizer=tokenizer, split="evaluation")
    spec = SpeedSpec.model_validate({}) if speed else None
    result: dict[str, Any] = {"kind": "llm", "protocol": protocol.to_dict(), "reference": None}
    dense = None
    if reference is not None:
        dense, _ = load_language_model(reference, base_dir=base)
        out.say(f"reference {reference}: {sum(p.numel() for p in dense.parameters()):,} params")
        ref_eval = evaluate_language(dense, tokens, protocol, speed=spec, progress=out.progress)
        result["reference"] = {"source": reference, **ref_eval}
    ev = evaluate_language(candidate, tokens, protocol, reference=dense, speed=spec,
                           progress=out.progress)  # fmt: skip
    result["model"] = {"source": model, **ev}
    return result
