"""Fuzz many nets: ``python -m tests.fuzz.run --n 1000 --start 0`` (``make fuzz N=1000``).

Prints a summary (passed / nothing to prune / failures by class with their seeds, and the
unsupported-op warnings seen) and exits 1 on any failure. ``--seed S -v`` runs one net and
prints its full report; ``--json PATH`` writes every outcome for triage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter, defaultdict

import torch

from .checks import Outcome, run_seed


def summarize(outcomes: list[Outcome], seconds: float) -> str:
    """The summary text of a fuzz run."""
    status = Counter(o.status for o in outcomes)
    lines = [
        f"fuzz: {len(outcomes)} nets in {seconds:.1f} s: {status['pass']} passed, "
        f"{status['nothing_to_prune']} nothing-to-prune, {status['fail']} failed",
    ]
    classes: dict[str, list[int]] = defaultdict(list)
    for o in outcomes:
        if o.failed:
            classes[o.klass].append(o.seed)
    for klass, seeds in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(map(str, seeds[:25])) + (" ..." if len(seeds) > 25 else "")
        lines.append(f"  FAIL x{len(seeds)}  {klass}\n        seeds: {shown}")
    warned: Counter[str] = Counter(w for o in outcomes for w in o.warnings)
    if warned:
        lines.append("unsupported-op warnings (nets):")
        lines += [f"  {n:4d}  {w}" for w, n in warned.most_common(12)]
    frozen: Counter[str] = Counter(w for o in outcomes for w in o.frozen)
    if frozen:
        lines.append("groups frozen where the engine gave up (nets; not failures):")
        lines += [f"  {n:4d}  {w}" for w, n in frozen.most_common(12)]
    slow = sorted(outcomes, key=lambda o: -o.seconds)[:3]
    lines.append("slowest: " + ", ".join(f"seed {o.seed} {o.seconds:.2f} s" for o in slow))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="number of nets")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--seed", type=int, default=None, help="run this one seed")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every failure")
    parser.add_argument("--scope", default="local", choices=["local", "global"], help="prune scope")
    parser.add_argument("--json", default=None, help="write every outcome to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [args.seed] if args.seed is not None else list(range(args.start, args.start + args.n))
    t0 = time.perf_counter()
    outcomes = []
    for i, seed in enumerate(seeds):
        o = run_seed(seed, scope=args.scope)
        outcomes.append(o)
        if args.verbose and o.failed:
            print(o.report(), flush=True)
        elif not args.verbose:
            print("." if not o.failed else "F", end="" if (i + 1) % 100 else "\n", flush=True)
    print()
    if args.seed is not None and not outcomes[0].failed:
        print(f"seed {args.seed}: {outcomes[0].status}; " + "; ".join(outcomes[0].notes))
    print(summarize(outcomes, time.perf_counter() - t0))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([dataclasses.asdict(o) | {"klass": o.klass} for o in outcomes], fh, indent=1)
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
