"""Smoke test of the side-by-side benchmark harness on a tiny configuration."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from benchmarks.compare.__main__ import _parse, configure, environment
from benchmarks.compare.config import BenchConfig, RecoverySpec, TaskSpec, preset
from benchmarks.compare.render import render_doc, render_summary
from benchmarks.compare.runner import run_task
from benchmarks.compare.summary import aggregate, headline, verdict
from prunekit.data import CACHE_ENV
from prunekit.errors import ConfigError

_ROW_FIELDS = {"task", "method", "tool", "level", "seed", "target_macs", "macs", "macs_reduction",
               "raw_acc", "bn_acc", "ft_acc", "ft_f1", "prune_s", "lat_b1_ms", "lat_b64_ms",
               "base_lat_b64_ms", "base_acc"}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchConfig, list[dict]]:
    mp = pytest.MonkeyPatch()
    mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    task = TaskSpec("t4-tiny", "mnist1d", "cnn1d", "macs", (2.0,), train_epochs=1,
                    train_subset=256, model_kwargs={"channels": (8, 16, 16), "hidden": 16},
                    methods=("pk-l2-local", "pk-l2-local+comp", "pk-taylor-global",
                             "tp-l2-local", "torch-l1-unstructured"))  # fmt: skip
    cfg = BenchConfig("quick", (task,), (0,), RecoverySpec(epochs=1, bn_samples=64), None,
                      latency_runs=2, calib_batches=1)  # fmt: skip
    rows = run_task(task, cfg, log=lambda _msg: None)
    mp.undo()
    return cfg, rows


def test_rows_have_fields_and_methods_meet_realised_macs(tiny_run):
    _, rows = tiny_run
    assert [r["method"] for r in rows][0] == "unpruned"
    pruned = [r for r in rows if r["method"] != "unpruned"]
    assert len(pruned) == 5
    for row in pruned:
        assert set(row) >= _ROW_FIELDS, _ROW_FIELDS - set(row)
        assert 0.0 <= row["ft_acc"] <= 100.0 and 0.0 <= row["bn_acc"] <= 100.0
        assert row["macs_reduction"] == pytest.approx(row["base_macs"] / row["macs"])
    structured = [r for r in pruned if r["tool"] != "torch.nn.utils.prune"]
    for row in structured:  # every structured method lands at or under the 2x MACs budget
        assert row["macs"] <= row["target_macs"]
        assert 2.0 <= row["macs_reduction"] < 2.6
    masked = next(r for r in pruned if r["tool"] == "torch.nn.utils.prune")
    assert masked["macs"] == masked["base_macs"] and masked["sparsity"] == pytest.approx(0.5)


def test_comp_variant_refits_the_same_cut_before_recalibration(tiny_run):
    _, rows = tiny_run
    plain = next(r for r in rows if r["method"] == "pk-l2-local")
    comp = next(r for r in rows if r["method"] == "pk-l2-local+comp")
    assert comp["macs"] == plain["macs"] and comp["raw_acc"] == plain["raw_acc"]  # one cut, shared
    assert comp["recovery"] == "finetune+comp" and comp["comp_layers"] >= 1
    assert 0.0 <= comp["comp_acc"] <= 100.0 and comp["comp_s"] > 0.0
    assert "comp_acc" not in plain


def test_recovery_suffixes_combine_and_unknown_ones_are_named():
    from benchmarks.compare.methods import base_method, method_names, recovery_variants
    from prunekit.errors import RegistryError

    assert base_method("pk-l2-local+comp+kd") == "pk-l2-local"
    assert recovery_variants("pk-l2-local+comp+kd") == ("+comp", "+kd")
    assert recovery_variants("tp-l2-local") == ()
    assert "pk-l2-global+comp+kd" in method_names()
    with pytest.raises(RegistryError, match=r"\+prune.*valid"):
        recovery_variants("pk-l2-local+prune")


def test_render_writes_doc_and_plot(tiny_run, tmp_path):
    cfg, rows = tiny_run
    res = {"command": "python -m benchmarks.compare --test", "config": cfg.to_dict(),
           "environment": environment(cfg), "rows": rows, "criteria": [], "elapsed_s": 1.0,
           "finished": "now"}  # fmt: skip
    (tmp_path / "results-quick.json").write_text(json.dumps(res))
    doc = tmp_path / "BENCHMARKS.md"
    render_doc(tmp_path, doc)
    text = doc.read_text()
    assert "`tp-l2-local`" in text and "`pk-taylor-global`" in text and "Torch-Pruning best" in text
    assert (tmp_path / "quick-t4-tiny.png").stat().st_size > 1000


def _row(method: str, tool: str, acc: float, seed: int) -> dict:
    recovery = "finetune+kd" if method.endswith("+kd") else "finetune"
    return {"task": "t", "level": 2.0, "method": method, "tool": tool, "seed": seed,
            "ft_acc": acc, "macs_reduction": 2.0, "recovery": recovery}  # fmt: skip


def test_aggregate_and_verdict_by_hand():
    rows = [_row("pk-a", "prunekit", 90.0, 0), _row("pk-a", "prunekit", 92.0, 1),
            _row("tp-b", "torch-pruning", 89.0, 0), _row("tp-b", "torch-pruning", 89.0, 1)]  # fmt: skip
    cells = aggregate(rows)
    pk = next(c for c in cells if c.method == "pk-a")
    assert pk.stats["ft_acc"][0] == pytest.approx(91.0)
    assert pk.stats["ft_acc"][1] == pytest.approx(2**0.5)  # sample std of (90, 92)
    assert "ahead of" in verdict(cells) and "+2.00 points" in verdict(cells)
    assert "recovery options" not in verdict(cells)


def test_verdict_compares_like_recovery_first_then_prunekit_options():
    rows = [_row("pk-a", "prunekit", 88.0, 0), _row("pk-a+kd", "prunekit", 91.0, 0),
            _row("tp-b", "torch-pruning", 89.0, 0)]  # fmt: skip
    text = verdict(aggregate(rows))
    same, options = text.split(". With prunekit's recovery options: ")
    assert "`pk-a`" in same and "**behind**" in same and "-1.00 points" in same
    assert "`pk-a+kd`" in options and "ahead of" in options and "+2.00 points" in options


def test_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="valid"):
        preset("medium")
    with pytest.raises(ConfigError, match="matches no task"):
        preset("quick").select(("t9",))
    with pytest.raises(ConfigError, match="levels"):
        TaskSpec("x", "wine", "mlp", "macs", (0.5,))
    assert replace(preset("full"), seeds=(0,)).select(("t4",)).criteria_task == "t4-cnn1d-mnist1d"
    quick = preset("quick")
    assert quick.tasks[0].seeds == (0,) and quick.seeds == (0, 1)  # ResNet-20: one seed in quick


def test_summary_line_per_task_level_with_deltas_by_hand():
    unpruned = {"task": "t", "level": None, "method": "unpruned", "tool": "reference",
                "seed": 0, "ft_acc": 95.0}  # fmt: skip
    rows = [unpruned, _row("pk-a", "prunekit", 88.0, 0), _row("pk-a+kd", "prunekit", 91.0, 0),
            _row("tp-b", "torch-pruning", 89.0, 0)]  # fmt: skip
    (h,) = headline(aggregate(rows))
    assert (h.tp.method, h.pk_same.method, h.pk_any.method, h.seeds) == (
        "tp-b",
        "pk-a",
        "pk-a+kd",
        1,
    )
    lines = render_summary([("full-x", {"rows": rows, "environment": {"commit": "abc123"}})])
    line = next(ln for ln in lines if ln.startswith("| `full-x` @abc123"))
    assert "| **-1.00 (behind)** |" in line and "| +2.00 |" in line and "2× MACs" in line


def test_summary_before_training_ranks_by_bn_accuracy_and_counts_compensation():
    unpruned = {"task": "t", "level": None, "method": "unpruned", "tool": "reference",
                "seed": 0, "ft_acc": 95.0}  # fmt: skip
    rows = [unpruned,
            _row("pk-a", "prunekit", 90.0, 0) | {"bn_acc": 60.0},
            _row("pk-a+comp", "prunekit", 90.0, 0) | {"bn_acc": 93.0, "recovery": "finetune+comp"},
            _row("tp-b", "torch-pruning", 91.0, 0) | {"bn_acc": 70.0}]  # fmt: skip
    lines = render_summary([("full-x", {"rows": rows})])
    split = lines.index("### Right after the cut, before any training")
    after, before = lines[:split], lines[split:]
    (trained,) = [ln for ln in after if ln.startswith("| `full-x`")]
    (untrained,) = [ln for ln in before if ln.startswith("| `full-x`")]
    assert "`tp-b` 91.00" in trained and "**-1.00 (behind)**" in trained
    assert "`pk-a` 60.00" in untrained and "**-10.00 (behind)**" in untrained
    assert "`pk-a+comp` 93.00" in untrained and "| +23.00 |" in untrained


def test_a_gap_that_rounds_to_zero_is_not_called_behind():
    from benchmarks.compare.render import _delta

    (pk,) = aggregate([_row("pk-a", "prunekit", 97.2222, 0)])
    (tp,) = aggregate([_row("tp-b", "torch-pruning", 97.2223, 0)])
    assert _delta(pk, tp, "ft_acc") == "+0.00"


def test_full_runs_render_first_newest_first_then_quick(tmp_path):
    from benchmarks.compare.render import sorted_runs

    stamps = {"results-quick-t1.json": "2026-01-03", "results-quick.json": "2026-01-01",
              "results-full-a.json": "2026-01-01", "results-full-b.json": "2026-01-02"}  # fmt: skip
    for name, finished in stamps.items():
        (tmp_path / name).write_text(json.dumps({"finished": finished}))
    got = sorted_runs([tmp_path / n for n in stamps])
    assert [p.name for p in got] == ["results-full-b.json", "results-full-a.json",
                                     "results-quick.json", "results-quick-t1.json"]  # fmt: skip


def test_methods_filter_keeps_named_methods_and_names_bad_ones():
    cfg = configure(_parse(["--quick", "--tasks", "t4", "--methods", "pk-l2-local", "tp-l2-local"]))
    assert cfg.tasks[0].methods == ("pk-l2-local", "tp-l2-local")
    with pytest.raises(ConfigError, match="unknown; valid"):
        configure(_parse(["--quick", "--methods", "pk-nope"]))
    with pytest.raises(ConfigError, match="no method"):
        configure(_parse(["--quick", "--tasks", "t2", "--methods", "pk-l2-global"]))


def test_a_cut_that_misses_the_macs_budget_cannot_be_best():
    short = _row("tp-short", "torch-pruning", 99.0, 0) | {"macs_reduction": 1.5}
    rows = [_row("pk-a", "prunekit", 90.0, 0), short, _row("tp-b", "torch-pruning", 89.0, 0)]
    assert "`tp-b`" in verdict(aggregate(rows)) and "`tp-short`" not in verdict(aggregate(rows))


def test_reseeded_loader_replays_the_same_shuffle_whatever_ran_before():
    import torch
    from torch.utils.data import DataLoader

    from benchmarks.compare.runner import reseed_loader

    loader = DataLoader(list(range(32)), batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    reseed_loader(loader, 3)
    first = [b.tolist() for b in loader]
    for _ in loader:  # another method consumed the generator
        pass
    reseed_loader(loader, 3)
    assert [b.tolist() for b in loader] == first
    reseed_loader(loader, 4)
    assert [b.tolist() for b in loader] != first


def test_a_method_that_cannot_cut_is_reported_not_ranked(tmp_path):
    from benchmarks.compare.render import render_run
    from benchmarks.compare.runner import _failed_row

    failed = _failed_row("pk-l2-global-r16", 2.0, ConfigError("target_macs=5 cannot be met"))
    failed |= {"task": "t", "seed": 0}
    rows = [{"task": "t", "level": None, "method": "unpruned", "tool": "reference", "seed": 0,
             "ft_acc": 95.0, "macs_reduction": 1.0},
            _row("pk-a", "prunekit", 90.0, 0), failed, _row("tp-b", "torch-pruning", 89.0, 0)]  # fmt: skip
    assert "`pk-a`" in verdict(aggregate(rows)) and "r16" not in verdict(aggregate(rows))
    res = {"command": "x", "config": preset("quick").to_dict(), "environment": {}, "rows": rows,
           "criteria": [], "elapsed_s": 1.0, "finished": "now"}  # fmt: skip
    text = "\n".join(render_run(res, tmp_path, "full-x"))
    assert "no cut at this budget: target_macs=5 cannot be met" in text
    assert "| `pk-l2-global-r16` | prunekit | finetune | 2 | - |" in text


def test_latency_bar_counts_rows_meeting_point_nine_by_hand():
    from benchmarks.compare.render import _latency_bar

    unpruned = {"task": "t", "level": None, "method": "unpruned", "tool": "reference",
                "seed": 0, "ft_acc": 95.0}  # fmt: skip
    timed = {"macs_reduction": 2.0, "base_lat_b64_ms": 10.0}
    rows = [unpruned,
            _row("pk-a", "prunekit", 90.0, 0) | timed | {"lat_b64_ms": 6.0},  # 10/6/2 = 0.83
            _row("pk-b", "prunekit", 89.0, 0) | timed | {"lat_b64_ms": 5.0},  # 1.00
            _row("tp-b", "torch-pruning", 89.5, 0) | timed | {"lat_b64_ms": 5.5}]  # fmt: skip
    text = _latency_bar([("full-x", {"rows": rows})])
    assert "over the 1 timed MACs-budget rows" in text
    assert "meets it in 0, **not met in 1 (behind)**; ratios 0.83–0.83" in text  # best acc: pk-a
    assert "Torch-Pruning's best meets it in 1 of 1; ratios 0.91–0.91" in text  # 10/5.5/2
