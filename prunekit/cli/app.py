"""The ``prunekit`` command: a thin layer over :mod:`prunekit.pipeline` and :mod:`prunekit.recipe`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .launch import NprocOpt, relaunch
from .llm import (
    DataOpt,
    ReferenceOpt,
    SeqLenOpt,
    SpeedOpt,
    StrideOpt,
    WindowsOpt,
    evaluate_llm,
    prune_llm,
    wants_llm,
)
from .output import EXIT_CODES, Output, fail_on_errors, interrupt_exit
from .show import evaluation_rows, export_rows, show_run

if TYPE_CHECKING:  # the pipeline imports torch: only the commands that run it import it
    from ..recipe import Recipe

__all__ = ["app", "show_run"]

_EPILOG = "Exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()) + "."

app = typer.Typer(
    name="prunekit",
    help="Prune PyTorch models by importance score, recover, and measure honestly.\n\n"
    "Start with `prunekit demo`, or `prunekit init recipe.yaml` then `prunekit prune "
    "recipe.yaml`. Human-readable progress goes to stderr; --json puts one JSON summary on "
    "stdout.",
    epilog=_EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

RecipeArg = Annotated[Path, typer.Argument(help="The recipe YAML file.", show_default=False)]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Run directory (default: the recipe's output.dir)."),
]


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Write a machine-readable JSON summary to stdout.")
]


def _out(ctx: typer.Context, quiet: bool = False, json_: bool = False) -> Output:
    """The global flags, given before the command (``prunekit --json prune``) or after it
    (``prunekit prune r.yaml --json``): either position turns a flag on."""
    obj = ctx.find_root().obj
    base = obj if isinstance(obj, Output) else Output()
    return Output(quiet=base.quiet or quiet, json=base.json or json_)


@app.callback()
def _main(ctx: typer.Context, quiet: QuietOpt = False, json_: JsonOpt = False) -> None:
    ctx.obj = Output(quiet=quiet, json=json_)


def _load(out: Output, recipe: Path) -> Recipe:
    """Read, validate and path-check the recipe (no torch yet); deprecations as lines."""
    import warnings

    from ..recipe import load_recipe

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        loaded = load_recipe(recipe)
    for warning in caught:
        out.warn(f"{recipe}: {warning.message}")
    return loaded


ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue an interrupted run in the same run directory: reuse its finished "
        "stages (baseline evaluation, sensitivity, cut, recovery).",
    ),
]


def _run(out: Output, recipe: Path, out_dir: Path | None, mode: str, resume: bool) -> None:
    if wants_llm(recipe, None):  # kind: llm
        return prune_llm(out, recipe, out_dir, mode, resume)
    with fail_on_errors(out):
        loaded = _load(out, recipe)
        from ..pipeline import RunInterrupted, run

        try:
            result = run(loaded, mode=mode, out_dir=out_dir, progress=out.progress,
                         log=out.say, resume=resume)  # fmt: skip
        except RunInterrupted as exc:
            interrupt_exit(out, exc, f"prunekit {mode} {recipe} --resume")
    from .. import distributed

    if not distributed.is_main():
        return  # under torchrun rank 0 reports (and wrote the run directory)
    show_run(out, result)
    out.result(result.to_dict(), str(result.report))


@app.command()
def prune(
    ctx: typer.Context,
    recipe: RecipeArg,
    out_dir: OutOpt = None,
    resume: ResumeOpt = False,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
    nproc: NprocOpt = 1,
) -> None:
    """Train or load the baseline, prune as the recipe's `prune` section says, recover,
    evaluate, and write the run directory (report.html, metrics.json, plan, model).
    Ctrl-C keeps what finished; `--resume` continues from there."""
    relaunch(nproc)  # --nproc N: the same command under torchrun
    _run(_out(ctx, quiet, json_), recipe, out_dir, "prune", resume)


@app.command()
def search(
    ctx: typer.Context,
    recipe: RecipeArg,
    out_dir: OutOpt = None,
    resume: ResumeOpt = False,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
    nproc: NprocOpt = 1,
) -> None:
    """Like `prune`, but find the cut with the recipe's `search` section (tolerance or
    budget, strategies compared) and plot the trade-off curve."""
    relaunch(nproc)  # --nproc N: the same command under torchrun
    _run(_out(ctx, quiet, json_), recipe, out_dir, "search", resume)


@app.command()
def demo(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path(
        "runs/demo"
    ),
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """The whole loop on built-in MNIST (about 15 s on 2 cores, 10 s once the baseline is
    cached): train, per-layer sensitivity, search criteria/allocations for the best cut at half
    the MACs with least-squares compensation, recover with distillation, evaluate on the
    held-out test split, write a report."""
    out = _out(ctx, quiet, json_)
    with fail_on_errors(out):
        from ..demo import run_demo
        from ..pipeline import RunInterrupted

        try:
            result = run_demo(out_dir, progress=out.progress, log=out.say)
        except RunInterrupted as exc:
            interrupt_exit(out, exc, "")
    show_run(out, result)
    out.result(result.to_dict(), str(result.report))


@app.command()
def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the recipe.")] = Path("recipe.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Write a commented starter recipe."""
    from ..recipe import write_starter

    out = _out(ctx, quiet, json_)
    with fail_on_errors(out):
        written = write_starter(path, force=force)
    out.say(f"wrote {written}; edit it, then run: prunekit prune {written}")
    out.result({"recipe": str(written)}, str(written))


@app.command()
def evaluate(  # noqa: PLR0913  (one parameter per CLI option)
    ctx: typer.Context,
    recipe: Annotated[
        Path | None,
        typer.Argument(
            help="The recipe YAML file (leave it out for --model NAME --data DATASET).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="A run directory: evaluate its model. With --data: "
            "a language model (built-in name or Hugging Face directory).",
        ),
    ] = None,
    dataset: DataOpt = None,
    seq_len: SeqLenOpt = None,
    stride: StrideOpt = None,
    windows: WindowsOpt = None,
    reference: ReferenceOpt = None,
    speed: SpeedOpt = True,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Evaluate the recipe's baseline, or (with --model RUN_DIR) a saved pruned model
    against it: accuracy, macro-F1, ECE, agreement, params, MACs, latency. For a causal
    language model (`--model smollm2-135m --data shakespeare`, an LLM recipe, or its run
    directory): perplexity over --windows windows of --seq-len tokens every --stride,
    next-token agreement with --reference, batch-1 prefill/decode tokens/s."""
    out = _out(ctx, quiet, json_)
    if wants_llm(recipe, dataset):
        return evaluate_llm(out, recipe=recipe, model=model, data=dataset, reference=reference,
                            seq_len=seq_len, stride=stride, windows=windows, speed=speed)  # fmt: skip
    assert recipe is not None
    with fail_on_errors(out):
        loaded = _load(out, recipe)
        from ..pipeline import evaluation_dict, load_run_model, measure, open_session

        session = open_session(loaded, progress=out.progress, log=out.say)
        before = evaluation_dict(measure(session.baseline, session.recipe, session.data))
        after = None
        if model is not None:
            pruned, _, _ = load_run_model(model)
            report = measure(pruned, session.recipe, session.data, reference=session.baseline)
            after = evaluation_dict(report)
    header = ["metric", "baseline"] + (["pruned"] if after is not None else [])
    split = loaded.evaluation.split
    out.table(f"evaluation ({split} split)", header, evaluation_rows(before, after))
    strip = {k: v for k, v in before.items() if k != "confusion"}
    data: dict[str, Any] = {"split": split, "baseline": strip}
    if after is not None:
        data["pruned"] = {k: v for k, v in after.items() if k != "confusion"}
    out.result(data)


@app.command()
def sensitivity(
    ctx: typer.Context,
    recipe: RecipeArg,
    out_dir: OutOpt = None,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Prune each layer group of the baseline alone at evaluation.sensitivity_ratios and
    measure validation accuracy (after BN recalibration); write the curves as a report."""
    out = _out(ctx, quiet, json_)
    with fail_on_errors(out):
        loaded = _load(out, recipe)
        from ..pipeline import open_session, write_sensitivity
        from ..pipeline import sensitivity as measure_sensitivity

        session = open_session(loaded, progress=out.progress, log=out.say)
        sens = measure_sensitivity(session)
        target = out_dir or session.recipe.run_dir() / "sensitivity"
        page = write_sensitivity(session, sens, target)
    drops = sens.drops()
    worst = sorted(drops, key=lambda g: -max(drops[g].values(), default=0.0))
    rows = [[g, *(f"{sens.metrics[g][r]:.4f}" for r in sens.ratios)] for g in worst]
    out.table(f"validation accuracy with one group pruned (base {sens.base:.4f})",
              ["group", *(f"r={r:g}" for r in sens.ratios)], rows)  # fmt: skip
    out.say(f"report: {page}")
    out.result({"report": str(page), **sens.to_dict()}, str(page))


@app.command()
def report(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A run directory with record.json.")],
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Re-render report.html, report.md and the plots from a run's record.json."""
    from ..errors import ConfigError

    out = _out(ctx, quiet, json_)
    with fail_on_errors(out):
        if not (run_dir / "record.json").is_file():
            raise ConfigError(f"{run_dir} has no record.json; pass a run directory")
        from ..report import load_record, write_report

        page = write_report(load_record(run_dir), run_dir)
    out.say(f"report: {page}")
    out.result({"report": str(page)}, str(page))


@app.command()
def export(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by prune/search.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="onnx or torchscript.")] = "onnx",
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Output file.")] = None,
    threads: Annotated[int, typer.Option(help="Threads for both latency timings.")] = 1,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Rebuild the run's pruned model (plan replay + safetensors), export it, check it
    against PyTorch (onnxruntime for ONNX) and time one forward pass of both on the same
    batch and threads."""
    out = _out(ctx, quiet, json_)
    with fail_on_errors(out):
        from ..pipeline import export_run

        rep = export_run(run_dir, fmt, out=out_file, threads=threads)
    rows, caveat = export_rows(rep, fmt)
    out.table(f"export ({fmt})", ["", "value"], rows)
    if caveat:
        out.say(caveat)
    out.result(rep.to_dict(), rep.path)
