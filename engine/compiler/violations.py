"""What a broken WAFv2 constraint looks like: ``Violation`` and ``DocumentInvalid``.

Kept apart from ``validate`` and ``modelcheck`` so that both report in the same terms
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.core.errors import WafsmithError


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken constraint: where, what value, which rule."""

    field: str
    value: Any
    rule: str

    def __str__(self) -> str:
        shown = repr(self.value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        return f"{self.field} = {shown}: {self.rule}"


class DocumentInvalid(WafsmithError):
    """The compiled document breaks WAFv2 constraints; nothing may be sent."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        lines = "\n".join(f"  - {v}" for v in violations[:50])
        more = f"\n  ... and {len(violations) - 50} more" if len(violations) > 50 else ""
        super().__init__(f"{len(violations)} constraint violation(s):\n{lines}{more}")
