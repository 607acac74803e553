"""What a conformance check found: the checks that passed, and the error when one fails."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConformanceError

__all__ = ["ConformanceError", "ConformanceReport"]


@dataclass
class ConformanceReport:
    """The checks a subject passed (``passed``) and those that did not apply (``skipped``,
    check -> why), e.g. the zero-unit check for a criterion that is not magnitude-like."""

    subject: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def ok(self, check: str) -> None:
        if check not in self.passed:
            self.passed.append(check)

    def skip(self, check: str, why: str) -> None:
        self.skipped.setdefault(check, why)
