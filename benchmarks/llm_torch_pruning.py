"""Torch-Pruning's own LLM recipe on SmolLM2-135M, under the protocol of ``llm_common``.

The method of Torch-Pruning's ``examples/LLMs/prune_llm.py`` (torch-pruning 1.6.1):
``GroupMagnitudeImportance(p=2, group_reduction="mean")``, ``BasePruner`` with
``global_pruning=False`` (local), ``pruning_ratio = head_pruning_ratio = ratio`` (heads,
hidden size and FFN at the same ratio), ``round_to=4``, ``num_heads`` for ``q/k/v_proj``
(query and KV head counts), ``prune_num_heads=True``, ``prune_head_dims=False``,
``ignored_layers=[lm_head]``, the trace input ``"Hello world."``, ``output_transform`` taking
``.logits``, the interactive ``step`` loop, then the example's config updates (hidden size,
heads, KV groups, intermediate size). No calibration data (magnitude only).

Configurations (``--config``):

- ``full``: the recipe as written (heads + hidden size + FFN);
- ``heads_ffn``: heads + FFN, hidden size kept (``o_proj`` and ``down_proj`` added to
  ``ignored_layers``, so no group has the residual stream as its root);
- ``ffn``: FFN only (every attention projection and ``down_proj`` ignored too).

Each configuration runs in its own process (``--all`` starts them) with a hard wall-time
limit; group construction (``BasePruner.__init__``, the dependency graph and every group) has
its own alarm, ``--build-limit``. A run that does not finish prints
``{"family": "torch_pruning", "status": "timeout", "seconds": ...}`` with the phase. Rows
otherwise follow ``llm_common`` (``block_removed`` from :func:`llm_common.block_params`).

``--profile SECONDS`` runs group construction of ``--config`` under cProfile for that long and
prints the top functions and the growth of the group being built (its size and the largest
channel index it holds) to stderr: on transformers 5 the DFS of ``get_pruning_group`` goes
round RoPE's ``rotate_half`` (slice + concat) with an unbounded index shift.

    python benchmarks/llm_torch_pruning.py --all --out docs/bench/llm_torch_pruning.jsonl
    python benchmarks/llm_torch_pruning.py --config ffn --ratio 0.2
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llm_common  # noqa: E402

RATIOS = (0.1, 0.2, 0.3, 0.5)
CONFIGS = ("full", "heads_ffn", "ffn")
TRACE_TEXT = "Hello world."


class BuildTimeout(Exception):
    """Group construction ran past ``--build-limit``."""


def _attention_and_mlp(model: Any) -> tuple[list[Any], list[Any]]:
    attn = [m for n, m in model.named_modules() if n.endswith("self_attn")]
    mlp = [m for n, m in model.named_modules() if n.endswith("mlp")]
    return attn, mlp


def recipe_kwargs(model: Any, tok: Any, *, config: str, ratio: float) -> dict[str, Any]:
    """BasePruner keyword arguments of the example, with ``config``'s extra ignored layers."""
    import torch_pruning as tp

    cfg = model.config
    attn, mlp = _attention_and_mlp(model)
    num_heads: dict[nn.Module, int] = {}
    for m in attn:
        num_heads[m.q_proj] = cfg.num_attention_heads
        num_heads[m.k_proj] = cfg.num_key_value_heads
        num_heads[m.v_proj] = cfg.num_key_value_heads
    ignored: list[Any] = [model.lm_head]
    if config in ("heads_ffn", "ffn"):
        ignored += [m.o_proj for m in attn] + [m.down_proj for m in mlp]
    if config == "ffn":
        ignored += [p for m in attn for p in (m.q_proj, m.k_proj, m.v_proj)]
    inputs = torch.tensor(tok.encode(TRACE_TEXT)).unsqueeze(0)
    return dict(
        example_inputs=inputs,
        importance=tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean"),
        global_pruning=False,
        output_transform=lambda x: x.logits,
        pruning_ratio=ratio,
        ignored_layers=ignored,
        num_heads=num_heads,
        prune_num_heads=True,
        prune_head_dims=False,
        head_pruning_ratio=ratio if config != "ffn" else 0.0,
        out_channel_groups={},
        round_to=4,
    )


def update_config(model: Any) -> None:
    """The example's attribute updates after pruning (hidden size, heads, KV groups, FFN)."""
    cfg = model.config
    gqa = cfg.num_attention_heads != cfg.num_key_value_heads
    cfg.hidden_size = model.lm_head.in_features
    attn, mlp = _attention_and_mlp(model)
    for m in attn:
        heads = m.q_proj.out_features // m.head_dim
        cfg.num_attention_heads = heads
        if not gqa:
            cfg.num_key_value_heads = heads
        if hasattr(m, "num_key_value_groups"):
            m.num_key_value_groups = heads // cfg.num_key_value_heads
    for m in mlp:
        cfg.intermediate_size = m.gate_proj.out_features


def _alarm(_signum: int, _frame: Any) -> None:
    raise BuildTimeout


def prune_one(
    model: nn.Module, tok: Any, *, config: str, ratio: float, build_limit: int
) -> dict[str, Any]:
    """Run the recipe on ``model`` in place; the measured keys of the row (or a timeout)."""
    import torch_pruning as tp

    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(build_limit)
    try:
        pruner = tp.pruner.BasePruner(
            model, **recipe_kwargs(model, tok, config=config, ratio=ratio)
        )
    except BuildTimeout:
        return {
            "status": "timeout",
            "phase": "group construction",
            "seconds": round(time.perf_counter() - t0, 1),
        }
    finally:
        signal.alarm(0)
    build_s = time.perf_counter() - t0
    for group in pruner.step(interactive=True):
        group.prune()
    update_config(model)
    del pruner
    return {
        "status": "ok",
        "build_s": round(build_s, 1),
        "prune_s": round(time.perf_counter() - t0, 1),
    }


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration in this process: load, prune, evaluate, print the row."""
    model, tok, weights = llm_common.load()
    before = llm_common.block_params(model)
    row: dict[str, Any] = {
        "family": "torch_pruning",
        "method": f"tp_l2_{args.config}",
        "config": args.config,
        "ratio": args.ratio,
        "build_limit_s": args.build_limit,
    }
    row.update(
        prune_one(model, tok, config=args.config, ratio=args.ratio, build_limit=args.build_limit)
    )
    if row["status"] != "ok":
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        row.update(peak_rss_gb=round(rss / 2**30, 3), rss_over_weights=round(rss / weights, 2))
        print(json.dumps(row), flush=True)
        return row
    cfg: Any = model.config
    row.update(
        block_removed=round(1 - llm_common.block_params(model) / before, 4),
        shape=[
            cfg.hidden_size,
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.intermediate_size,
        ],
    )
    finished: dict[str, Any] = llm_common.finish_row(model, tok, weights, row)
    return finished


def profile(args: argparse.Namespace) -> None:
    """Group construction under cProfile for ``--profile`` seconds; growth stats to stderr."""
    from torch_pruning.dependency import group as tp_group

    model, tok, _ = llm_common.load()
    grow = {"size": 0, "max_idx": 0}
    add_dep = tp_group.Group.add_dep

    def tracking(self: Any, dep: Any, idxs: Any) -> None:
        add_dep(self, dep, idxs)
        grow["size"] = len(self._group)
        if idxs:
            grow["max_idx"] = max(grow["max_idx"], max(i.idx for i in idxs))

    tp_group.Group.add_dep = tracking
    prof = cProfile.Profile()
    prof.enable()
    out = prune_one(model, tok, config=args.config, ratio=args.ratio, build_limit=args.profile)
    prof.disable()
    tp_group.Group.add_dep = add_dep
    print(json.dumps({"profile": args.config, **out, **grow}), file=sys.stderr)
    pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(15)


def run_all(args: argparse.Namespace) -> None:
    """Every (config, ratio) in its own process with a hard limit; rows appended to ``--out``."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for config in args.configs.split(","):
        for ratio in [float(r) for r in args.ratios.split(",")]:
            limit = args.build_limit if config == "full" and ratio == 0.2 else args.short_limit
            cmd = [
                sys.executable,
                __file__,
                "--config",
                config,
                "--ratio",
                str(ratio),
                "--build-limit",
                str(limit),
            ]
            t0 = time.perf_counter()
            try:
                res = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=limit + args.eval_limit
                )
                rows = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
                line = (
                    rows[-1] if rows else json.dumps(_failed(config, ratio, t0, res.stderr[-400:]))
                )
            except subprocess.TimeoutExpired:
                line = json.dumps(
                    _failed(config, ratio, t0, "killed at the hard wall-time limit", "timeout")
                )
            print(line, flush=True)
            with out.open("a") as fh:
                fh.write(line + "\n")


def _failed(
    config: str, ratio: float, t0: float, why: str, status: str = "error"
) -> dict[str, Any]:
    return {
        "family": "torch_pruning",
        "method": f"tp_l2_{config}",
        "config": config,
        "ratio": ratio,
        "status": status,
        "phase": "whole run",
        "seconds": round(time.perf_counter() - t0, 1),
        "error": why,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="full", choices=CONFIGS)
    ap.add_argument("--ratio", type=float, default=0.2)
    ap.add_argument("--build-limit", type=int, default=1200, help="seconds for group construction")
    ap.add_argument("--profile", type=int, default=0, help="profile group construction this long")
    ap.add_argument("--all", action="store_true", help="every config x ratio, one process each")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--ratios", default=",".join(str(r) for r in RATIOS))
    ap.add_argument("--short-limit", type=int, default=300, help="build limit except full@0.2")
    ap.add_argument("--eval-limit", type=int, default=1800, help="hard limit beyond the build")
    ap.add_argument("--out", default="docs/bench/llm_torch_pruning.jsonl")
    args = ap.parse_args()
    if args.all:
        run_all(args)
    elif args.profile:
        profile(args)
    else:
        run_one(args)


if __name__ == "__main__":
    main()
