"""The checks every fuzzed net must pass, and how a failure is reported.

1. ``check_equivalence`` at the case's random ratio and seed;
2. ``analyze``: group keys are unique; ``prune(ratio=0.5)`` (``NothingToPruneError`` is accepted);
3. the pruned model runs at another batch size with the original's output structure/shapes;
4. a backward step on the pruned model (train mode) gives finite gradients;
5. after each prunekit call and after training the pruned model, the input model is
   unchanged: state_dict values bit-identical, structure, flags, requires_grad, .grad,
   hooks, parameter identity and every plain attribute.
"""

from __future__ import annotations

import copy
import re
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

import prunekit
from prunekit.errors import EquivalenceError, NothingToPruneError, UnsupportedOpWarning
from prunekit.graph import flatten_tensors

from .generator import FuzzCase, make_case

_PLAIN = (int, float, str, bool, tuple, list, type(None))


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything about ``model`` that prunekit must not change."""
    mods = list(model.named_modules(remove_duplicate=False))
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "structure": repr(model),
        "modules": [(n, type(m).__name__, id(m)) for n, m in mods],
        "training": [(n, m.training) for n, m in mods],
        "params": [
            (n, id(p), p.requires_grad, p.grad is None, p.dtype, tuple(p.shape))
            for n, p in model.named_parameters(remove_duplicate=False)
        ],
        "buffers": [(n, id(b)) for n, b in model.named_buffers(remove_duplicate=False)],
        "hooks": [
            (n, k, len(v))
            for n, m in mods
            for k, v in vars(m).items()
            if k.endswith("hooks") and isinstance(v, dict)
        ],  # fmt: skip
        "attrs": [
            (n, k, repr(v))
            for n, m in mods
            for k, v in sorted(vars(m).items())
            if not k.startswith("_") and isinstance(v, _PLAIN)
        ],  # fmt: skip
        "attr_names": [(n, sorted(vars(m))) for n, m in mods],
    }


def diff_snapshot(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The first difference between two snapshots, in words, or ``None``."""
    sb, sa = before["state"], after["state"]
    if sb.keys() != sa.keys():
        return f"state_dict keys changed: {sorted(set(sb) ^ set(sa))}"
    for k in sb:
        b, a = sb[k], sa[k]
        if b.shape != a.shape or b.dtype != a.dtype:
            return f"{k}: {tuple(b.shape)} {b.dtype} -> {tuple(a.shape)} {a.dtype}"
        if not torch.equal(b.view(-1).view(torch.uint8), a.view(-1).view(torch.uint8)):
            return f"{k}: values changed (bit-level)"
    for key in (
        "structure",
        "modules",
        "training",
        "params",
        "buffers",
        "hooks",
        "attrs",
        "attr_names",
    ):
        if before[key] != after[key]:
            changed = [x for x in after[key] if x not in before[key]] if key != "structure" else ""
            return f"{key} changed {changed!s:.300}"
    return None


def _outputs(model: nn.Module, x: Tensor) -> list[Tensor]:
    return flatten_tensors(model(x))


def _structure(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return ("T", tuple(obj.shape), obj.dtype)
    if isinstance(obj, dict):
        return {k: _structure(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return tuple(_structure(v) for v in obj)
    return type(obj).__name__


class CheckFailure(AssertionError):
    """A check (not prunekit) found something wrong: shapes, non-finite grads, a touched model."""


@dataclass
class Outcome:
    """What happened to one case."""

    seed: int
    status: str = "pass"  # pass | nothing_to_prune | fail
    stage: str = ""
    error: str = ""
    tail: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def klass(self) -> str:
        """A failure class: the stage, exception type and message with numbers/names elided."""
        first = self.error.splitlines()[0] if self.error else ""
        first = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", first)
        first = re.sub(r"\b[\w]+(\.[\w]+)+\b", "<name>", first)
        first = re.sub(r"\d+(\.\d+)?(e-?\d+)?", "N", first)
        return f"{self.stage}: {first[:110]}"

    def report(self) -> str:
        return (
            f"fuzz seed {self.seed} FAILED at {self.stage}: {self.error}\n"
            f"reproduce: FUZZ_SEED={self.seed} .venv/bin/pytest tests/fuzz -q -k seed"
            f"   (or: .venv/bin/python -m tests.fuzz.run --seed {self.seed} -v)\n"
            f"{self.tail}\n{self.description}"
        )


def _elide(text: str) -> str:
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'…'", text.splitlines()[0]))[:120]


def frozen_reasons(graph: Any) -> list[str]:
    """Why groups were frozen, where the engine gave up (not outputs or kernel dims)."""
    return sorted(
        {
            _elide(f.reason)
            for f in graph.frozen
            if f.kind == "unsupported" or any(w in f.reason for w in ("split", "chunk", "literal"))
        }
    )


def _check_untouched(before: dict[str, Any], model: nn.Module, after_what: str) -> None:
    problem = diff_snapshot(before, snapshot(model))
    if problem:
        raise CheckFailure(f"the input model was modified by {after_what}: {problem}")


def _check_pruned(case: FuzzCase, pruned: nn.Module, reference: Any) -> None:
    pruned.eval()
    with torch.no_grad():
        out = pruned(case.other_inputs)
    if _structure(out) != reference:
        raise CheckFailure(
            f"pruned output at batch {len(case.other_inputs)}: {_structure(out)} != {reference}"
        )
    if not all(torch.isfinite(t).all() for t in flatten_tensors(out) if t.is_floating_point()):
        raise CheckFailure("pruned model gives non-finite outputs")


def _check_backward(case: FuzzCase, pruned: nn.Module) -> None:
    pruned.train()
    outs = [t for t in _outputs(pruned, case.inputs) if t.is_floating_point()]
    loss = sum((t.float().pow(2).mean() for t in outs), torch.zeros(()))
    loss.backward()
    grads = [(n, p.grad) for n, p in pruned.named_parameters() if p.requires_grad]
    if not any(g is not None for _, g in grads):
        raise CheckFailure("no parameter of the pruned model received a gradient")
    for n, g in grads:
        if g is not None and not torch.isfinite(g).all():
            raise CheckFailure(f"non-finite gradient for {n}")


def _stages(case: FuzzCase, out: Outcome, scope: str) -> None:
    model, x = case.model, case.inputs
    before = snapshot(model)
    ref_model = copy.deepcopy(model).eval()
    with torch.no_grad():
        reference = _structure(ref_model(case.other_inputs))
    out.stage = "check_equivalence"
    try:
        rep = prunekit.testing.check_equivalence(model, x, ratio=case.ratio, seed=case.eq_seed)
        out.notes.append(f"equivalence: {rep.groups_tested} groups, {rep.units_removed} units")
    except EquivalenceError as e:
        if "no exact group" not in str(e):
            raise
        out.notes.append("equivalence: no exact group to test")
    out.stage = "untouched after check_equivalence"
    _check_untouched(before, model, "check_equivalence")
    out.stage = "analyze"
    graph = prunekit.analyze(model, x)
    out.frozen = frozen_reasons(graph)
    keys = [g.key for g in graph.groups]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise CheckFailure(f"analyze gives two groups the same key: {dup}")
    _check_untouched(before, model, "analyze")
    out.stage = "prune"
    try:
        result = prunekit.prune(model, x, ratio=0.5, scope=scope)
    except NothingToPruneError:
        out.status = "nothing_to_prune"
        out.stage = "untouched after prune"
        _check_untouched(before, model, "prune (NothingToPruneError)")
        return
    out.stage = "untouched after prune"
    _check_untouched(before, model, "prune")
    out.stage = "pruned forward at another batch size"
    _check_pruned(case, result.model, reference)
    out.stage = "pruned backward"
    _check_backward(case, result.model)
    out.stage = "untouched after training the pruned model"
    _check_untouched(before, model, "a train-mode forward/backward of the pruned model")


def run_case(case: FuzzCase, *, scope: str = "local") -> Outcome:
    """Run every check on ``case`` (``scope``: prune's); never raises: the outcome says what
    happened."""
    out = Outcome(seed=case.seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _stages(case, out, scope)
        except Exception as e:  # noqa: BLE001  (every crash is a finding)
            out.status = "fail"
            out.error = f"{type(e).__name__}: {e}"
            out.tail = "".join(traceback.format_exception(e)[-6:])
            out.description = case.describe()
    out.seconds = time.perf_counter() - t0
    out.warnings = sorted(
        {_elide(str(w.message)) for w in caught if issubclass(w.category, UnsupportedOpWarning)}
    )
    return out


def run_seed(seed: int, *, scope: str = "local") -> Outcome:
    """Build and check the net of ``seed``."""
    return run_case(make_case(seed), scope=scope)
