"""What an adapter needs of its library, in a form a test can check."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    """One private name an adapter relies on, and a probe that returns what is wrong
    with it in the installed library (None when nothing is)."""

    name: str
    probe: Callable[[], str | None]

    def problem(self) -> str | None:
        try:
            return self.probe()
        except Exception as error:  # a probe that cannot even run is a finding too
            return f"{type(error).__name__}: {error}"


def failures(required: Iterable[Requirement]) -> list[str]:
    """One line per requirement that does not hold; empty when all do."""
    found = ((r.name, r.problem()) for r in required)
    return [f"{name}: {what}" for name, what in found if what is not None]
