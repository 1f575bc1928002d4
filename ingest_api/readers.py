"""The API's own background reader (the order-events feed), and the loop it runs: a read loop
that survives fetch errors, and the state readiness reports.

A fetch that raises is logged, counted, and retried after a back-off that doubles up to a
cap; the reader is *down* from the failure until a fetch succeeds again. Nothing but
cancellation ends the loop, so a reader never dies silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: One fetch: the raw values of the records it brought (``None`` for a tombstone).
Fetch = Callable[[], Awaitable[Iterable[bytes | None]]]


@dataclass
class ReaderState:
    """What readiness says about one reader (times in seconds since the epoch)."""

    name: str
    running: bool = False
    last_error: str | None = None
    last_error_s: float | None = None
    last_record_s: float | None = None
    #: Fetches failed in a row (0 while the reader works).
    failures: int = 0

    @property
    def up(self) -> bool:
        return self.running and self.failures == 0

    def reason(self) -> str:
        if not self.running:
            return f"{self.name} reader is not running" + (
                f" (last error: {self.last_error})" if self.last_error else ""
            )
        if self.failures:
            return f"{self.name} reader: {self.failures} fetches failed in a row: {self.last_error}"
        return "ok"


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.2
    cap_s: float = 5.0

    def delay_s(self, failures: int) -> float:
        return float(min(self.cap_s, self.first_s * 2 ** max(0, failures - 1)))


async def read_forever(
    state: ReaderState,
    fetch: Fetch,
    handle: Callable[[bytes | None], None],
    backoff: Backoff = Backoff(),
) -> None:
    """Fetch and ``handle`` records until cancelled; record every failure in ``state``."""
    state.running = True
    try:
        while True:
            try:
                values = await fetch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await _failed(state, exc, backoff)
                continue
            state.failures = 0
            for value in values:
                state.last_record_s = time.time()
                _handle_safely(state, handle, value)
    finally:
        state.running = False


async def _failed(state: ReaderState, exc: Exception, backoff: Backoff) -> None:
    state.failures += 1
    state.last_error = f"{type(exc).__name__}: {exc}"[:300]
    state.last_error_s = time.time()
    delay_s = backoff.delay_s(state.failures)
    log.warning(
        "%s reader: fetch failed (%s, %d in a row); retrying in %.1f s",
        state.name,
        state.last_error,
        state.failures,
        delay_s,
    )
    await asyncio.sleep(delay_s)


def _handle_safely(
    state: ReaderState, handle: Callable[[bytes | None], None], value: bytes | None
) -> None:
    """One bad record must not end the reader: log it (never its payload) and go on."""
    try:
        handle(value)
    except Exception as exc:
        log.exception("%s reader: a record could not be handled; skipped", state.name)
        state.last_error = f"{type(exc).__name__} while handling a record"
        state.last_error_s = time.time()
