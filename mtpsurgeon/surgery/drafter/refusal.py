"""A drafter build refused: every failing check, one line."""
from __future__ import annotations

from mtpsurgeon.analysis.links import LinkCheck
from mtpsurgeon.errors import SurgeryError


class BuildRefused(SurgeryError):
    """The checkpoint does not fit the base (or is incomplete); nothing was written."""

    def __init__(self, source: object, checks: list[LinkCheck]) -> None:
        self.checks = [c for c in checks if not c.passed]
        listed = "; ".join(f"{c.name}: expected {c.expected}, got {c.actual}" for c in self.checks)
        super().__init__(f"{source}: refused, {len(self.checks)} failing check(s): {listed}; nothing written")
