"""A mismatch found by reconciliation, and how a run reports them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True, slots=True)
class Mismatch:
    #: The DESIGN.md section 5 invariant broken ("1".."7"), "log" for an unreadable log, or
    #: "dead-letter" for a quarantined record not yet retried or resolved.
    invariant: str
    #: What it is about: ``order <uid>``, ``partner <id> <currency>``, ``card <id>``...
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.subject}: {self.detail}"


def report(mismatches: Iterable[Mismatch], out: TextIO) -> int:
    """Print every mismatch and a total; the exit status (1 when any)."""
    found = list(mismatches)
    for mismatch in found:
        print(mismatch, file=out)
    print(f"reconcile: {len(found)} mismatch(es)", file=out)
    return 1 if found else 0
