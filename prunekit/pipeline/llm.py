"""``run_llm(recipe)``: an LLM recipe end to end (``prunekit prune`` on ``kind: llm``).

Stages: load the dense model and tokenizer -> read the text (calibration batch, held-out
stream) -> evaluate the dense model -> apply the prune steps to a copy -> distil (optional)
-> evaluate the pruned model against the dense one -> write the run directory::

    report.html, report.md   the report (summary, language metrics, steps, timings)
    metrics.json, record.json  the same numbers as JSON (record.json re-renders the report)
    prune.json               what each step removed (indices, scores, sparsities)
    llm_run.json             the dense model's source and the evaluation protocol (read by
                             ``prunekit evaluate --model RUN_DIR``)
    recipe.yaml              the recipe with its defaults filled in
    model/                   save_pretrained + tokenizer (AutoModelForCausalLM loads it)

As in :func:`prunekit.pipeline.run`, each finished stage is kept under ``RUN_DIR/.resume``
(the dense evaluation as JSON; the pruned and the distilled model as ``save_pretrained``
folders), ``resume=True`` reuses them, and Ctrl-C raises
:class:`~prunekit.pipeline.RunInterrupted` after writing ``metrics.json``.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ..evaluation._runtime import fixed_threads
from ..recipe.llm import LLMRecipe
from ..report import RunRecord, layer_widths, write_report
from .llm_distill import distill_stage
from .llm_eval import (
    DTYPES,
    RecipeTexts,
    TextProtocol,
    evaluate_language,
    load_language_model,
    load_saved_model,
    recipe_protocol,
    recipe_texts,
)
from .llm_steps import apply_steps
from .progress import Progress, RunInterrupted
from .session import Log

__all__ = ["LLMRunResult", "run_llm"]


@dataclass
class LLMRunResult:
    """What :func:`run_llm` did (``model``, the pruned model, is not serialised)."""

    run_dir: Path
    report: Path
    baseline: dict[str, Any]
    pruned: dict[str, Any]
    steps: list[dict[str, Any]]
    recovery: dict[str, Any]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    model: nn.Module | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (per-step indices stay in ``prune.json``)."""
        steps = [{k: v for k, v in s.items() if k in _STEP_KEYS} for s in self.steps]
        recovery = {k: v for k, v in self.recovery.items() if k != "losses"}
        return {"run_dir": str(self.run_dir), "report": str(self.report), "kind": "llm",
                "baseline": self.baseline, "pruned": self.pruned, "steps": steps,
                "recovery": recovery, "timings": self.timings,
                "notes": list(self.notes)}  # fmt: skip


_STEP_KEYS = ("method", "summary", "block_params", "seconds", "heads_per_group",
              "ffn_neurons", "removed_blocks", "sparsity")  # fmt: skip


@dataclass
class _Context:
    recipe: LLMRecipe
    track: Progress
    progress: bool
    say: Log
    timings: dict[str, float] = field(default_factory=dict)

    def timed(self, name: str, clock: float) -> None:
        self.timings[name] = round(time.perf_counter() - clock, 3)


def run_llm(
    recipe: LLMRecipe,
    *,
    out_dir: str | Path | None = None,
    progress: bool = True,
    log: Log | None = None,
    resume: bool = False,
) -> LLMRunResult:
    """Run an LLM recipe end to end and write its run directory (module docstring).

    Args:
        recipe: A validated :class:`~prunekit.recipe.llm.LLMRecipe`.
        out_dir: The run directory (default ``recipe.run_dir()``).
        progress: Show progress bars (evaluation windows, blocks, distillation).
        log: Called with one line per stage; ``None`` is silent.
        resume: Reuse the stages an earlier, interrupted run of the same recipe finished.

    Returns:
        An :class:`LLMRunResult`.

    Raises:
        RunInterrupted: Ctrl-C; ``out_dir`` keeps what finished.
    """
    run_dir = Path(out_dir) if out_dir is not None else recipe.run_dir()
    track = Progress.start(run_dir, recipe, "prune-llm", resume=resume)
    ctx = _Context(recipe, track, progress, log or (lambda _msg: None))
    try:
        with fixed_threads(recipe.threads):
            result = _stages(ctx)
    except KeyboardInterrupt as exc:
        if isinstance(exc, RunInterrupted):
            raise
        raise track.interrupted() from None
    track.clear()
    return result


def _stages(ctx: _Context) -> LLMRunResult:
    recipe, track, say = ctx.recipe, ctx.track, ctx.say
    with track.stage("load"):
        clock = time.perf_counter()
        dense, tokenizer = load_language_model(recipe.model.name, base_dir=recipe.base_dir,
                                               dtype=recipe.model.dtype)  # fmt: skip
        texts = recipe_texts(recipe, tokenizer)
        ctx.timed("load model and text", clock)
    calibration, held_out = texts.calibration, texts.held_out
    protocol = recipe_protocol(recipe)
    say(f"model {recipe.model.name}: {sum(p.numel() for p in dense.parameters()):,} params; "
        f"calibration {tuple(calibration.shape)} tokens of {recipe.data.name}, held-out "
        f"stream {held_out.numel():,} tokens")  # fmt: skip
    with track.stage("evaluate dense"):
        clock = time.perf_counter()
        before = track.reuse("evaluate dense") or _evaluate(ctx, dense, held_out, protocol,
                                                            None, tokenizer)  # fmt: skip
        track.finish("evaluate dense", before)
        ctx.timed("evaluate dense", clock)
    say(f"dense: perplexity {before['perplexity']:.3f} ({_windows(before)})")
    with track.stage("prune"):
        clock = time.perf_counter()
        pruned, steps, notes = _prune_stage(ctx, dense, calibration)
        ctx.timed("prune", clock)
    recovery: dict[str, Any] = {}
    if recipe.recovery.distill is not None:
        with track.stage("distill"):
            clock = time.perf_counter()
            pruned, recovery = _distill_stage(ctx, pruned, dense, texts)
            ctx.timed("distill", clock)
    with track.stage("evaluate pruned"):
        clock = time.perf_counter()
        after = _evaluate(ctx, pruned, held_out, protocol, dense, tokenizer)
        ctx.timed("evaluate pruned", clock)
    say(f"pruned: perplexity {after['perplexity']:.3f} "
        f"({after['perplexity'] / before['perplexity']:.2f}x dense), next-token agreement "
        f"{after.get('agreement', float('nan')):.2%}")  # fmt: skip
    if track.reused:
        say(f"resumed: reused {', '.join(track.reused)} from {track.run_dir}")
    return _finish(ctx, (dense, pruned, tokenizer), (before, after), steps, recovery, notes)


def _windows(evaluation: dict[str, Any]) -> str:
    lang = evaluation["language"]
    return f"{lang['windows']} windows of {lang['seq_len']}, stride {lang['stride']}"


def _evaluate(
    ctx: _Context, model: nn.Module, tokens: torch.Tensor, protocol: TextProtocol,
    reference: nn.Module | None, tokenizer: Any,
) -> dict[str, Any]:  # fmt: skip
    ev = ctx.recipe.evaluation
    sample = (tokenizer, ev.sample) if ev.sample is not None else None
    return evaluate_language(
        model, tokens, protocol, reference=reference if ev.agreement else None, speed=ev.speed,
        sample=sample, progress=ctx.progress,
    )  # fmt: skip


def _save_stage_model(ctx: _Context, name: str, model: nn.Module) -> None:
    from ..export import save_pretrained

    folder = ctx.track.folder / name
    shutil.rmtree(folder, ignore_errors=True)
    save_pretrained(model, folder)


def _stored(ctx: _Context, name: str) -> tuple[nn.Module, Any] | None:
    """A stage's stored (model, result) when resuming, else ``None``."""
    stored = ctx.track.result(name)
    folder = ctx.track.folder / name
    if stored is None or not (folder / "config.json").is_file():
        return None
    from ..errors import DataError

    try:
        model = load_saved_model(folder, dtype=DTYPES[ctx.recipe.model.dtype])
    except DataError:
        return None
    ctx.track.reuse(name)
    return model, stored


def _prune_stage(
    ctx: _Context, dense: nn.Module, calibration: torch.Tensor
) -> tuple[nn.Module, list[dict[str, Any]], list[str]]:
    found = _stored(ctx, "prune")
    if found is not None:
        model, stored = found
        return model, stored["steps"], stored["notes"]
    model, steps, notes = apply_steps(dense, list(ctx.recipe.prune), calibration,
                                      progress=ctx.progress, log=ctx.say)  # fmt: skip
    _save_stage_model(ctx, "prune", model)
    ctx.track.finish("prune", {"steps": steps, "notes": notes})
    return model, steps, notes


def _distill_stage(
    ctx: _Context, student: nn.Module, teacher: nn.Module, texts: RecipeTexts
) -> tuple[nn.Module, dict[str, Any]]:
    found = _stored(ctx, "distill")
    if found is not None:
        return found
    done = distill_stage(student, teacher, ctx.recipe, texts, progress=ctx.progress)
    ctx.say(f"distill: {done.get('summary', '')}")
    _save_stage_model(ctx, "distill", student)
    ctx.track.finish("distill", done)
    return student, done


def _finish(
    ctx: _Context,
    models: tuple[nn.Module, nn.Module, Any],
    evals: tuple[dict[str, Any], dict[str, Any]],
    steps: list[dict[str, Any]],
    recovery: dict[str, Any],
    notes: list[str],
) -> LLMRunResult:
    """Write the model, the artefacts and the report; the run's :class:`LLMRunResult`."""
    recipe, run_dir = ctx.recipe, ctx.track.run_dir
    dense, pruned, tokenizer = models
    before, after = evals
    run_dir.mkdir(parents=True, exist_ok=True)
    notes = list(notes)
    reload = _save_model(run_dir, pruned, tokenizer) if recipe.output.save_model else None
    if reload is not None and reload.get("error"):
        notes.append(f"model/ does not reload: {reload['error']}")
    widths = {} if any(s.method == "depth" for s in recipe.prune) else layer_widths(dense, pruned)
    meta = _meta(recipe, steps, recovery, reload)
    record = RunRecord(
        title=f"prunekit: {recipe.name}", recipe=recipe.to_dict(), baseline=before,
        pruned=after, metric="perplexity", layer_widths=widths, timings=ctx.timings,
        notes=notes, meta=meta,
    )  # fmt: skip
    report = write_report(record, run_dir)
    _write_artefacts(run_dir, recipe, steps, recovery, (before, after))
    return LLMRunResult(run_dir, report, before, after, steps, recovery, ctx.timings, notes,
                        pruned)  # fmt: skip


def _meta(
    recipe: LLMRecipe, steps: list[dict[str, Any]], recovery: dict[str, Any],
    reload: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    data = recipe.data
    meta: dict[str, Any] = {
        "kind": "llm", "model": recipe.model.name, "dtype": recipe.model.dtype,
        "dataset": data.name,
        "calibration": f"{data.calibration_sequences} x {data.seq_len} tokens, seed {data.seed}",
        "steps": [s["summary"] for s in steps], "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }  # fmt: skip
    if recovery:
        meta["recovery"] = recovery.get("summary", "distillation")
    if reload is not None:
        meta["model_reload"] = reload
    return meta


def _save_model(run_dir: Path, model: nn.Module, tokenizer: Any) -> dict[str, Any]:
    """``save_pretrained`` the model and tokenizer into ``run_dir/model`` and check that it
    reloads (:func:`~.llm_eval.load_saved_model`) with the same logits on a short random
    sequence; what the save warned (e.g. that plain transformers cannot rebuild per-block
    widths) is kept."""
    from ..errors import PrunekitError
    from ..export import save_pretrained

    folder = run_dir / "model"
    shutil.rmtree(folder, ignore_errors=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_pretrained(model, folder)
    tokenizer.save_pretrained(str(folder))
    said = [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 2))
    ids = torch.randint(0, vocab, (1, 32), generator=torch.Generator().manual_seed(0))
    try:
        again = load_saved_model(folder, dtype=next(model.parameters()).dtype)
    except PrunekitError as exc:
        return {"dir": str(folder), "error": str(exc), "warnings": said}
    with torch.inference_mode():
        a = model(input_ids=ids, use_cache=False).logits
        b = again(input_ids=ids, use_cache=False).logits
    return {"dir": str(folder), "loader": type(again).__name__,
            "max_abs_logit_diff": float((a - b).abs().max()), "warnings": said}  # fmt: skip


def _write_artefacts(
    run_dir: Path, recipe: LLMRecipe, steps: list[dict[str, Any]], recovery: dict[str, Any],
    evals: tuple[dict[str, Any], dict[str, Any]],
) -> None:  # fmt: skip
    (run_dir / "prune.json").write_text(
        json.dumps({"steps": steps, "recovery": recovery}, indent=1, default=str)
    )
    source = recipe.model.name
    if recipe.model.is_directory:
        source = str(recipe.path(source).resolve())
    info = {"kind": "llm", "model": source, "dtype": recipe.model.dtype,
            "data": recipe.data.name, "protocol": recipe_protocol(recipe).to_dict(),
            "baseline": evals[0], "pruned": evals[1]}  # fmt: skip
    (run_dir / "llm_run.json").write_text(json.dumps(info, indent=1, default=str))
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
