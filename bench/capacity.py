"""The pure parts of the capacity benchmark: which rate to try next, whether a phase held,
percentiles and the spread of repeated runs. No I/O here, so the decisions the benchmark
reports can be unit-tested (``tests/unit/bench``).

A phase offers full lives (create → payer confirms → operator approves → row ``approved`` in
PostgreSQL) at one rate. It *holds* when every life it started completed and create's p99,
measured from each request's due time, stays within the target for that rate. The
capacity of a run is the highest rate that held below the lowest rate that did not: a
noisy pass above a failure does not count, because a rate that failed once is not
sustained.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: The issue's targets for create p99 (issue 13, "Targets"): 50 ms up to 200/s, 150 ms up
#: to 500/s, 250 ms (the figure for accepted requests under overload) beyond.
DEFAULT_TARGET = "200:50,500:150,250"


@dataclass(frozen=True, slots=True)
class P99Target:
    """Create p99 limits by offered rate: ``tiers`` are ``(up_to_rate, limit_ms)`` in rising
    order, ``beyond_ms`` applies above the last tier."""

    tiers: tuple[tuple[float, float], ...]
    beyond_ms: float

    def limit_ms(self, rate: float) -> float:
        for up_to, limit in self.tiers:
            if rate <= up_to:
                return limit
        return self.beyond_ms

    def describe(self) -> str:
        parts = [f"≤ {limit:g} ms up to {up_to:g}/s" for up_to, limit in self.tiers]
        what = "above" if self.tiers else "at every rate"
        return ", ".join([*parts, f"≤ {self.beyond_ms:g} ms {what}"])


def parse_target(text: str) -> P99Target:
    """``"50"`` (one limit at every rate) or ``"200:50,500:150,250"`` (limits by rate, the
    last one without a rate applying above the others)."""
    tiers: list[tuple[float, float]] = []
    beyond: float | None = None
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if beyond is not None:
            raise ValueError(f"only the last limit may go without a rate: {text!r}")
        rate, sep, limit = part.partition(":")
        if sep:
            tiers.append((float(rate), float(limit)))
        else:
            beyond = float(rate)
    if beyond is None:
        raise ValueError(f"a limit for the rates above the last tier is missing: {text!r}")
    if [r for r, _ in tiers] != sorted({r for r, _ in tiers}):
        raise ValueError(f"tier rates must rise: {text!r}")
    return P99Target(tuple(tiers), beyond)


@dataclass(frozen=True, slots=True)
class PhaseOutcome:
    """What one phase measured that the verdict needs."""

    rate: float
    started: int
    completed: int
    create_p99_ms: float


def verdict(outcome: PhaseOutcome, target: P99Target) -> tuple[bool, str]:
    """Whether the phase held, and why not (empty when it did)."""
    if outcome.started == 0:
        return False, "no life started"
    if outcome.completed < outcome.started:
        return False, f"{outcome.started - outcome.completed} of {outcome.started} lives unfinished"
    limit = target.limit_ms(outcome.rate)
    if outcome.create_p99_ms > limit:
        return False, f"create p99 {outcome.create_p99_ms:g} ms > {limit:g} ms"
    return True, ""


def overwhelmed(outcome: PhaseOutcome, target: P99Target) -> bool:
    """A failure far past capacity (under nine in ten lives completed, or create p99 over
    four times its limit): no stall of the machine explains it, so it is not retried."""
    if outcome.completed < 0.9 * outcome.started:
        return True
    return outcome.create_p99_ms > 4 * target.limit_ms(outcome.rate)


@dataclass(frozen=True, slots=True)
class Ladder:
    """How rates are stepped: ``start``, then ``factor`` times the last rate that held until
    one fails (or ``max_rate``); then bisection between the highest rate that held and the
    lowest that failed until their ratio is at most ``resolution``. A first rate that fails
    is divided by ``factor`` down to ``min_rate``. ``max_steps`` bounds the phases.

    A phase that fails is run again up to ``retries`` times (unless the caller says the
    failure was no stall: ``retry_last``), and its rate holds when any attempt held: on a
    shared machine one stall of someone else's work can push a p99 over its limit, and that
    is not the system's capacity. A rate that fails every attempt does not hold."""

    start: float
    factor: float = 2.0
    resolution: float = 1.2
    min_rate: float = 1.0
    max_rate: float = 5000.0
    max_steps: int = 12
    retries: int = 0

    def __post_init__(self) -> None:
        if self.factor <= 1 or self.resolution <= 1 or not 0 < self.min_rate <= self.start:
            raise ValueError(f"not a rising ladder: {self}")


def nice(rate: float) -> float:
    """A rate rounded to two significant figures (10, 15, 28, 340, 1300): phases are
    named by rates a reader can compare across runs."""
    if rate <= 0:
        return 0.0
    return float(round(rate, 1 - math.floor(math.log10(rate))))


def outcomes(tried: Sequence[tuple[float, bool]]) -> dict[float, bool]:
    """Each rate tried, and whether any of its attempts held."""
    found: dict[float, bool] = {}
    for rate, ok in tried:
        found[rate] = found.get(rate, False) or ok
    return found


def bounds(tried: Sequence[tuple[float, bool]]) -> tuple[float, float | None]:
    """(highest rate that held below the lowest failing one, or 0; lowest failing rate)."""
    results = outcomes(tried)
    failed = [r for r, ok in results.items() if not ok]
    ceiling = min(failed) if failed else None
    held = [r for r, ok in results.items() if ok and (ceiling is None or r < ceiling)]
    return (max(held) if held else 0.0), ceiling


def next_rate(
    ladder: Ladder, tried: Sequence[tuple[float, bool]], retry_last: bool = True
) -> float | None:
    """The next rate to offer given ``(rate, held)`` so far, or ``None`` when the search is
    done; ``retry_last=False`` when the last failure needs no second attempt
    (:func:`overwhelmed`)."""
    if not tried:
        return nice(ladder.start)
    if len(tried) >= ladder.max_steps:
        return None
    last, held = tried[-1]
    if retry_last and not held and sum(1 for r, _ in tried if r == last) <= ladder.retries:
        return last  # once more: was it the system or a stall of the machine?
    done = {r for r, _ in tried}
    floor, ceiling = bounds(tried)
    if ceiling is None:  # still climbing
        if floor >= ladder.max_rate:
            return None
        rate = min(nice(floor * ladder.factor), ladder.max_rate)
    elif floor == 0:  # the first rate already failed: step down
        rate = nice(ceiling / ladder.factor)
        if rate < ladder.min_rate:
            return None
    else:
        if ceiling / floor <= ladder.resolution:
            return None
        rate = nice(math.sqrt(floor * ceiling))  # bisection on a log scale
        if not floor < rate < ceiling:
            return None
    return None if rate in done else rate


def capacity(tried: Sequence[tuple[float, bool]]) -> float:
    """The highest sustained rate of one run (0 when no rate held)."""
    return bounds(tried)[0]


def saturated(tried: Sequence[tuple[float, bool]]) -> bool:
    """Whether the search found a rate that did not hold (else capacity is a lower bound)."""
    return not all(outcomes(tried).values())


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence: the smallest value
    with at least ``q`` % of the values at or below it."""
    if not values:
        raise ValueError("percentile of nothing")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Spread:
    """Minimum, median and maximum of repeated runs."""

    low: float
    median: float
    high: float
    runs: int

    def __str__(self) -> str:
        if self.runs == 1:
            return f"{self.median:g}"
        return f"{self.median:g} ({self.low:g} to {self.high:g}, {self.runs} runs)"


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("spread of nothing")
    return Spread(min(values), float(statistics.median(values)), max(values), len(values))
