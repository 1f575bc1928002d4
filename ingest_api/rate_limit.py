"""Per-partner request rates: a token bucket per partner, refused with ``429``.

A partner over its own rate is answered at once (``429 rate_limited`` with ``Retry-After``),
before its request costs anything shared (the nonce write, a Kafka send), so one partner's
flood does not slow the others. The bucket is checked after the signature (an outsider who
knows a key id cannot drain that partner's bucket with forged requests) and before the
nonce is remembered.

Everything here is pure and synchronous: the clock is passed in, and one event loop calls
it, so a check-and-take is atomic without a lock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Clock = Callable[[], float]


class RateLimitedError(Exception):
    """A partner asked faster than its rate; ``retry_after_s`` is when one token is back."""

    def __init__(self, partner_id: str, retry_after_s: float) -> None:
        super().__init__(f"partner {partner_id!r} is over its request rate")
        self.partner_id = partner_id
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1 (``Retry-After`` takes no fractions)."""
        return str(max(1, math.ceil(self.retry_after_s)))


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_s`` tokens a second, at most ``burst`` saved up; ``per_s == 0`` is unlimited."""

    per_s: float
    burst: float

    def __post_init__(self) -> None:
        if self.per_s < 0 or self.burst < 1:
            raise ValueError("a rate is >= 0 per second with a burst of at least 1")

    @property
    def unlimited(self) -> bool:
        return self.per_s == 0


@dataclass(slots=True)
class TokenBucket:
    rate: Rate
    tokens: float
    updated_s: float

    @classmethod
    def full(cls, rate: Rate, now_s: float) -> TokenBucket:
        return cls(rate, rate.burst, now_s)

    def take(self, now_s: float) -> float:
        """Take one token: ``0.0`` when taken, else the seconds until one is available
        (nothing is taken then, so a refused request does not push the next one back)."""
        elapsed_s = max(0.0, now_s - self.updated_s)
        self.tokens = min(self.rate.burst, self.tokens + elapsed_s * self.rate.per_s)
        self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate.per_s


class PartnerLimiter:
    """One bucket per partner: ``default`` for all, ``overrides`` by partner id.

    Memory is one small bucket per partner that has signed a request, so it is bounded by
    the number of partners (only authenticated callers reach it).
    """

    def __init__(
        self,
        default: Rate,
        overrides: Mapping[str, Rate] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._default = default
        self._overrides = dict(overrides or {})
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def rate_of(self, partner_id: str) -> Rate:
        return self._overrides.get(partner_id, self._default)

    def check(self, partner_id: str) -> None:
        """Admit one request of ``partner_id`` or raise :class:`RateLimitedError`."""
        rate = self.rate_of(partner_id)
        if rate.unlimited:
            return
        now_s = self._clock()
        bucket = self._buckets.get(partner_id)
        if bucket is None:
            bucket = self._buckets[partner_id] = TokenBucket.full(rate, now_s)
        wait_s = bucket.take(now_s)
        if wait_s > 0:
            raise RateLimitedError(partner_id, wait_s)


__all__ = ["PartnerLimiter", "Rate", "RateLimitedError", "TokenBucket"]
