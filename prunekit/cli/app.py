"""The ``prunekit`` command: a thin layer over :mod:`prunekit.pipeline` and :mod:`prunekit.recipe`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..pipeline import RunResult
from .output import EXIT_CODES, Output, fail_on_errors

__all__ = ["app"]

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


def _out(ctx: typer.Context) -> Output:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Output) else Output()


@app.callback()
def _main(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="Write a machine-readable JSON summary to stdout.")
    ] = False,
) -> None:
    ctx.obj = Output(quiet=quiet, json=json_)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def show_run(out: Output, result: RunResult) -> None:
    """The before/after table of a run, and where its report is."""
    base = result.stages[0]
    rows = [
        [
            s.stage,
            _pct(s.accuracy),
            f"{s.params:,}",
            f"{s.params / max(base.params, 1):.2f}x",
            f"{s.macs:,}",
            f"{s.macs / max(base.macs, 1):.2f}x",
        ]  # fmt: skip
        for s in result.stages
    ]
    out.table("accuracy and cost", ["stage", "accuracy", "params", "(x)", "MACs", "(x)"], rows)
    extra = []
    for key, label in (("macro_f1", "macro-F1"), ("ece", "ECE"), ("agreement", "agreement")):
        b, a = result.baseline.get(key), result.pruned.get(key)
        if a is not None:
            extra.append([label, "—" if b is None else _pct(b), _pct(a)])
    lat_b, lat_a = result.baseline.get("latency_ms", {}), result.pruned.get("latency_ms", {})
    for bs, ms in lat_a.items():
        if bs in lat_b:
            extra.append([f"latency b{bs}", f"{lat_b[bs]:.3f} ms", f"{ms:.3f} ms"])
    if extra:
        out.table("quality and speed (before → after)", ["metric", "before", "after"], extra)
    out.say(f"report: {result.report}")


def _run(ctx: typer.Context, recipe: Path, out_dir: Path | None, mode: str) -> None:
    from ..pipeline import run
    from ..recipe import load_recipe

    out = _out(ctx)
    with fail_on_errors(out):
        loaded = load_recipe(recipe)
        result = run(loaded, mode=mode, out_dir=out_dir, progress=out.progress, log=out.say)
    show_run(out, result)
    out.result(result.to_dict(), str(result.report))


@app.command()
def prune(ctx: typer.Context, recipe: RecipeArg, out_dir: OutOpt = None) -> None:
    """Train or load the baseline, prune as the recipe's `prune` section says, recover,
    evaluate, and write the run directory (report.html, metrics.json, plan, model)."""
    _run(ctx, recipe, out_dir, "prune")


@app.command()
def search(ctx: typer.Context, recipe: RecipeArg, out_dir: OutOpt = None) -> None:
    """Like `prune`, but find the cut with the recipe's `search` section (tolerance or
    budget, strategies compared) and plot the trade-off curve."""
    _run(ctx, recipe, out_dir, "search")


@app.command()
def demo(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path(
        "runs/demo"
    ),
) -> None:
    """The whole loop on built-in MNIST in about a minute: train (cached), per-layer
    sensitivity, search three criteria/allocations for the best cut at half the MACs, recover
    with distillation, evaluate, write a report."""
    from ..demo import run_demo

    out = _out(ctx)
    with fail_on_errors(out):
        result = run_demo(out_dir, progress=out.progress, log=out.say)
    show_run(out, result)
    out.result(result.to_dict(), str(result.report))


@app.command()
def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the recipe.")] = Path("recipe.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter recipe."""
    from ..recipe import write_starter

    out = _out(ctx)
    with fail_on_errors(out):
        written = write_starter(path, force=force)
    out.say(f"wrote {written}; edit it, then run: prunekit prune {written}")
    out.result({"recipe": str(written)}, str(written))


def _evaluation_rows(before: dict[str, Any], after: dict[str, Any] | None) -> list[list[str]]:
    rows = []
    for key in ("accuracy", "macro_f1", "ece", "agreement", "params", "macs"):
        if key in before or (after and key in after):
            vals = [before.get(key)] + ([after.get(key)] if after is not None else [])
            cells = ["—" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:.4f}")
                     for v in vals]  # fmt: skip
            rows.append([key, *cells])
    return rows


@app.command()
def evaluate(
    ctx: typer.Context,
    recipe: RecipeArg,
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="A run directory: evaluate its model.")
    ] = None,
) -> None:
    """Evaluate the recipe's baseline, or (with --model RUN_DIR) a saved pruned model
    against it: accuracy, macro-F1, ECE, agreement, params, MACs, latency."""
    from ..pipeline import evaluation_dict, load_run_model, measure, open_session
    from ..recipe import load_recipe

    out = _out(ctx)
    with fail_on_errors(out):
        session = open_session(load_recipe(recipe), progress=out.progress, log=out.say)
        before = evaluation_dict(measure(session.baseline, session.recipe, session.data))
        after = None
        if model is not None:
            pruned, _, _ = load_run_model(model)
            report = measure(pruned, session.recipe, session.data, reference=session.baseline)
            after = evaluation_dict(report)
    header = ["metric", "baseline"] + (["pruned"] if after is not None else [])
    out.table("evaluation", header, _evaluation_rows(before, after))
    strip = {k: v for k, v in before.items() if k != "confusion"}
    data = {"baseline": strip}
    if after is not None:
        data["pruned"] = {k: v for k, v in after.items() if k != "confusion"}
    out.result(data)


@app.command()
def sensitivity(ctx: typer.Context, recipe: RecipeArg, out_dir: OutOpt = None) -> None:
    """Prune each layer group of the baseline alone at evaluation.sensitivity_ratios and
    measure validation accuracy (after BN recalibration); write the curves as a report."""
    from ..pipeline import open_session, write_sensitivity
    from ..pipeline import sensitivity as measure_sensitivity
    from ..recipe import load_recipe

    out = _out(ctx)
    with fail_on_errors(out):
        session = open_session(load_recipe(recipe), progress=out.progress, log=out.say)
        sens = measure_sensitivity(session)
        target = out_dir or session.recipe.run_dir() / "sensitivity"
        page = write_sensitivity(session, sens, target)
    drops = sens.drops()
    worst = sorted(drops, key=lambda g: -max(drops[g].values(), default=0.0))
    rows = [[g, *(f"{sens.metrics[g][r]:.4f}" for r in sens.ratios)] for g in worst]
    out.table(f"accuracy with one group pruned (base {sens.base:.4f})",
              ["group", *(f"r={r:g}" for r in sens.ratios)], rows)  # fmt: skip
    out.say(f"report: {page}")
    out.result({"report": str(page), **sens.to_dict()}, str(page))


@app.command()
def report(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A run directory with record.json.")],
) -> None:
    """Re-render report.html, report.md and the plots from a run's record.json."""
    from ..errors import ConfigError
    from ..report import load_record, write_report

    out = _out(ctx)
    with fail_on_errors(out):
        if not (run_dir / "record.json").is_file():
            raise ConfigError(f"{run_dir} has no record.json; pass a run directory")
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
) -> None:
    """Rebuild the run's pruned model (plan replay + safetensors), export it, check it
    against PyTorch (onnxruntime for ONNX) and print the latency of both."""
    from ..pipeline import export_run

    out = _out(ctx)
    with fail_on_errors(out):
        rep = export_run(run_dir, fmt, out=out_file, threads=threads)
    rows = [["file", rep.path], ["exporter", rep.exporter], ["bytes", f"{rep.bytes:,}"],
            ["max |diff|", f"{rep.max_abs_diff:.2e}" if rep.max_abs_diff is not None else "—"]]  # fmt: skip
    if rep.torch_latency_ms is not None and rep.export_latency_ms is not None:
        rows += [["PyTorch latency", f"{rep.torch_latency_ms:.3f} ms"],
                 [f"{fmt} latency", f"{rep.export_latency_ms:.3f} ms"]]  # fmt: skip
    out.table(f"export ({fmt})", ["", "value"], rows)
    out.result(rep.to_dict(), rep.path)
