"""Nonce stores: which nonces each API key has already used, for the request verifier.

:class:`InMemoryNonceStore` is the single-process implementation, for unit tests. It is not
shared between processes, so behind several API workers a nonce could be replayed once per
worker; the API itself uses :class:`db.repositories.nonces.BatchedNonceStore`, which implements
the same :class:`~ingest_api.signing.NonceStore` protocol over a table every API process shares
(group-committed: one INSERT for the requests in flight, ADR 0006).
"""

from __future__ import annotations

import heapq
import time
from typing import Final

from ingest_api.signing import Clock

#: Far above any honest load (a partner at 1 000 requests/s for a 600 s window holds 600 000
#: nonces), low enough that a flood cannot exhaust the process's memory.
DEFAULT_MAX_ENTRIES: Final = 1_000_000


class NonceStoreFullError(RuntimeError):
    """Too many live nonces. The store fails closed: it never forgets a live nonce to make
    room, because that would let a captured request be replayed."""


class InMemoryNonceStore:
    """A dict of live ``(key_id, nonce)`` pairs plus a min-heap of their expiry times.

    Every call first pops the entries whose expiry has passed, so memory is bounded by the
    request rate times the window, and by ``max_entries`` in any case. ``remember`` does not
    await, so on one event loop its check-and-insert is atomic; it is not thread-safe.
    """

    def __init__(self, clock: Clock = time.time, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self._clock = clock
        self._max_entries = max_entries
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, str, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    async def remember(self, key_id: str, nonce: str, expires_at_s: float) -> bool:
        """``True`` the first time a pair is seen while live, ``False`` for a replay.

        An entry stays live up to and including ``expires_at_s``.
        """
        self._evict_expired(self._clock())
        entry = (key_id, nonce)
        if entry in self._expiry:
            return False
        if len(self._expiry) >= self._max_entries:
            raise NonceStoreFullError(f"{len(self._expiry)} live nonces; refusing to forget any")
        self._expiry[entry] = expires_at_s
        heapq.heappush(self._heap, (expires_at_s, key_id, nonce))
        return True

    def _evict_expired(self, now: float) -> None:
        # Each pair enters the heap only while absent from the dict and leaves both together,
        # so heap and dict always hold the same entries.
        while self._heap and self._heap[0][0] < now:
            _, key_id, nonce = heapq.heappop(self._heap)
            del self._expiry[(key_id, nonce)]


__all__ = ["DEFAULT_MAX_ENTRIES", "InMemoryNonceStore", "NonceStoreFullError"]
