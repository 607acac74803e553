"""The conformance battery over EVERY registered criterion and handler.

Parametrised by the registries' contents: registering a criterion or a handler adds it here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import pytest
import torch

import prunekit.surgery
from prunekit.conformance import (
    ConformanceError,
    check_criterion,
    check_handler,
    handler_examples,
)
from prunekit.importance import Criterion, available_importances, register_importance
from prunekit.surgery import handler_registrations


@pytest.mark.parametrize("name", available_importances())
def test_every_registered_criterion_conforms(name: str) -> None:
    report = check_criterion(name)
    assert {"follows the Importance protocol", "scores every group",
            "does not modify the model", "deterministic given a seed"} <= set(report.passed)  # fmt: skip
    assert ("zero unit scores lowest" in report.passed) != bool(report.skipped)


def _key(reg: tuple[object, object]) -> str:
    key = reg[0]
    return key if isinstance(key, str) else f"{key.__module__}.{key.__qualname__}"


def _package_registrations() -> list[tuple[object, object]]:
    """Every handler the package (and the libraries it covers) registers; handlers that other
    test modules register for their own checks (``test_layering.ChannelScale``) are not
    collected here, whatever order pytest imports the modules in."""
    return [r for r in handler_registrations() if not _key(r).startswith(("test", "tests."))]


@pytest.mark.parametrize("registration", _package_registrations(), ids=_key)
def test_every_registered_handler_conforms(registration: tuple[object, object]) -> None:
    key, handler = registration
    if isinstance(key, str) and importlib.util.find_spec(key.partition(".")[0]) is None:
        pytest.skip(f"{key} lives in a package that is not installed")
    examples = handler_examples(key)  # type: ignore[arg-type]
    assert examples, (
        f"no conformance example for {_key(registration)}: add one with "
        "prunekit.conformance.register_handler_example"
    )
    reports = [check_handler(handler, ex) for ex in examples]  # type: ignore[arg-type]
    assert all("answers match the tensors" in r.passed for r in reports)
    assert any("cut keeps attributes coherent" in r.passed for r in reports), [
        r.skipped for r in reports
    ]


@dataclass
class _Biased(Criterion):
    """A broken magnitude-like criterion: it adds the unit index, so a zero unit 0 ... n."""

    zero_unit_lowest = True

    def __call__(self, group, tensors):  # type: ignore[no-untyped-def]
        return torch.arange(group.num_units, 0, -1, dtype=torch.float32)


def test_battery_catches_a_false_zero_lowest_claim() -> None:
    with pytest.raises(ConformanceError, match="zero unit scores lowest"):
        check_criterion(_Biased())


def test_battery_catches_a_criterion_that_writes_the_model() -> None:
    class Writer(Criterion):
        def __call__(self, group, tensors):  # type: ignore[no-untyped-def]
            m = group.members[0]
            tensors[m.name].data.mul_(0.5)
            return torch.ones(group.num_units)

    with pytest.raises(ConformanceError, match="does not modify the model"):
        check_criterion(Writer())


def test_battery_catches_wrong_shapes_and_nondeterminism() -> None:
    with pytest.raises(ConformanceError, match="scores every group"):
        check_criterion(lambda g, t: torch.ones(g.num_units + 1))  # type: ignore[arg-type]
    with pytest.raises(ConformanceError, match="deterministic"):
        state = {"n": 0}

        def drifting(g, t):  # type: ignore[no-untyped-def]
            state["n"] += 1
            return torch.full((g.num_units,), float(state["n"]))

        check_criterion(drifting)  # type: ignore[arg-type]


def test_regression_register_importance_name_is_case_insensitive() -> None:
    register_importance("MixedCase", lambda: _Biased())
    try:
        assert "mixedcase" in available_importances()
        with pytest.raises(ConformanceError, match="zero unit"):
            check_criterion("MixedCase")
    finally:
        from prunekit.importance import registry

        registry._REGISTRY.pop("mixedcase")


def test_battery_catches_a_handler_that_leaves_attributes_stale() -> None:
    class Forgetful(prunekit.surgery.Handler):
        pass  # no update: Linear.out_features stays at the old width

    linear = handler_examples(torch.nn.Linear)[0]
    original = prunekit.surgery.get_handler(torch.nn.Linear(1, 1))
    bad = Forgetful()
    prunekit.surgery.register_handler(torch.nn.Linear, bad, override=True)
    try:
        with pytest.raises(ConformanceError, match="coherent|update"):
            check_handler(bad, linear)
    finally:
        prunekit.surgery.register_handler(torch.nn.Linear, original, override=True)
