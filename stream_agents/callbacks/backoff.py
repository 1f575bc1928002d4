"""When to try a failed delivery again, and when to give up (pure, no clock of its own).

The ``n``-th failure waits ``min(cap_s, base_s * 2 ** (n - 1))`` seconds, shortened by a
random share of at most ``jitter`` (so deliveries that failed together spread out instead of
hammering a recovering partner at once). No attempt is scheduled after ``give_up_at``
(creation + ``window_s``): the last wait is cut to end there, and a failure at or after it
parks the delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 10.0
    cap_s: float = 3600.0
    window_s: float = 24 * 3600.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if not (0 < self.base_s <= self.cap_s and self.window_s > 0 and 0 <= self.jitter < 1):
            raise ValueError("need 0 < base_s <= cap_s, window_s > 0 and 0 <= jitter < 1")


def delay_s(policy: RetryPolicy, failures: int, rand: float) -> float:
    """The wait after the ``failures``-th failure; ``rand`` is uniform in [0, 1)."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    exponent = min(failures - 1, 62)  # past this the cap has long been reached
    nominal = min(policy.cap_s, policy.base_s * 2.0**exponent)
    return nominal * (1.0 - policy.jitter * rand)


def next_attempt(
    policy: RetryPolicy, failures: int, now: datetime, give_up_at: datetime, rand: float
) -> datetime | None:
    """When to try again after a failure at ``now``; ``None``: the window is over, park it."""
    if now >= give_up_at:
        return None
    return min(now + timedelta(seconds=delay_s(policy, failures, rand)), give_up_at)


def schedule(policy: RetryPolicy) -> list[float]:
    """Seconds after creation of every attempt without jitter (the documented timetable)."""
    at, failures, times = 0.0, 0, [0.0]
    while at < policy.window_s:
        failures += 1
        at = min(at + delay_s(policy, failures, 0.0), policy.window_s)
        times.append(at)
    return times
