"""Sign-in throttling: how failed sign-ins in a scope (one username, one address) lock it.

Pure rules over one :class:`Counter` per scope; the repository keeps the counters in
PostgreSQL so every API process shares them.

* Every attempt is counted *before* the password is checked (:func:`admit`), so parallel
  attempts cannot slip past the limit while their hashes are being verified; a success takes
  its own count back (:func:`succeed`).
* When ``max_failures`` attempts of one window have failed, the scope is locked for
  ``lock_base_s``, then twice as long for each further lock (``lock_max_s`` at most). While
  locked, every attempt is refused without looking at the password.
* The failure count starts afresh after ``window_s``; the lock level too, once the scope has
  been quiet (no failure, no lock) for ``window_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Policy:
    max_failures: int
    window_s: float
    lock_base_s: float
    lock_max_s: float

    def __post_init__(self) -> None:
        assert self.max_failures >= 1, "max_failures must be at least 1"
        assert 0 < self.lock_base_s <= self.lock_max_s, "0 < lock_base_s <= lock_max_s"
        assert self.window_s > 0, "window_s must be positive"

    def lock_s(self, level: int) -> float:
        """How long the ``level``-th lock in a row lasts (1, 2, 3 ...)."""
        assert level >= 1
        return min(self.lock_base_s * float(2 ** min(level - 1, 62)), self.lock_max_s)


@dataclass(frozen=True, slots=True)
class Counter:
    """One scope's state. ``failures`` counts this window's attempts that have not
    succeeded (those still being checked included); ``level`` the locks in a row."""

    window_started_at: datetime
    failures: int = 0
    level: int = 0
    last_failure_at: datetime | None = None
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def retry_after_s(self, now: datetime) -> float:
        """Seconds until the lock ends (0 when not locked)."""
        if self.locked_until is None:
            return 0.0
        return max(0.0, (self.locked_until - now).total_seconds())


@dataclass(frozen=True, slots=True)
class Admission:
    """The verdict on one attempt: admitted (``retry_after_s`` is 0) or refused."""

    counter: Counter
    retry_after_s: float

    @property
    def admitted(self) -> bool:
        return self.retry_after_s == 0


def fresh(counter: Counter, now: datetime, policy: Policy) -> Counter:
    """``counter`` with an expired window (and, after a quiet window, the level) reset."""
    if counter.locked(now):
        return counter
    window = timedelta(seconds=policy.window_s)
    marks = [m for m in (counter.last_failure_at, counter.locked_until) if m is not None]
    if marks and now - max(marks) >= window:
        counter = replace(counter, level=0)
    if now - counter.window_started_at >= window:
        counter = replace(counter, failures=0, window_started_at=now)
    return counter


def admit(counter: Counter, now: datetime, policy: Policy) -> Admission:
    """Count an attempt, or refuse it: the scope is locked, or as many attempts as the limit
    allows are already being checked (then retry after the shortest lock)."""
    counter = fresh(counter, now, policy)
    if counter.locked(now):
        return Admission(counter, counter.retry_after_s(now))
    if counter.failures >= policy.max_failures:
        return Admission(counter, policy.lock_base_s)
    return Admission(replace(counter, failures=counter.failures + 1), 0.0)


def fail(counter: Counter, now: datetime, policy: Policy) -> tuple[Counter, bool]:
    """The admitted attempt failed; the new counter and whether a lock starts now."""
    counter = replace(counter, last_failure_at=now)
    if counter.locked(now) or counter.failures < policy.max_failures:
        return counter, False
    level = counter.level + 1
    locked = replace(
        counter,
        failures=0,
        level=level,
        window_started_at=now,
        locked_until=now + timedelta(seconds=policy.lock_s(level)),
    )
    return locked, True


def succeed(counter: Counter) -> Counter:
    """The admitted attempt succeeded: its count is taken back."""
    return replace(counter, failures=max(0, counter.failures - 1))


__all__ = ["Admission", "Counter", "Policy", "admit", "fail", "fresh", "succeed"]
