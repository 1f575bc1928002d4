"""Console sessions checked from memory for a short, stated time.

Checking a bearer token was one database round trip (and a ``last_seen_at`` write) per
console call, deciding included. The cache remembers a successful check for ``ttl_s``
(default 1 s): within it the same token is answered from memory. A session ended in this
process (sign-out, password change) is dropped from its cache at once; one ended elsewhere
(another API process, the console, a deactivation) stops working here within ``ttl_s``.
``last_seen_at`` moves on each database check, so at most once per ``ttl_s`` per token:
the idle timeout (minutes) is unaffected.

Only successes are cached: an unknown or expired token is checked against the database
every time, so a session cannot be "found" by a cached miss either.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Final

from db.repositories.users import ConsoleUser

DEFAULT_TTL_S: Final = 1.0
DEFAULT_MAX_ENTRIES: Final = 10_000


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class SessionCache:
    def __init__(
        self,
        ttl_s: float = DEFAULT_TTL_S,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s < 0 or max_entries <= 0:
            raise ValueError("ttl_s must be >= 0 and max_entries positive")
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[float, ConsoleUser]] = {}

    def get(self, token: str) -> ConsoleUser | None:
        key = _digest(token)
        found = self._entries.get(key)
        if found is None:
            return None
        checked_at, user = found
        if self._clock() - checked_at >= self.ttl_s:
            del self._entries[key]
            return None
        return user

    def put(self, token: str, user: ConsoleUser) -> None:
        if self.ttl_s == 0:
            return
        if len(self._entries) >= self._max_entries:
            self._evict_expired()
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # a flood of tokens: forget, the database still answers
        self._entries[_digest(token)] = (self._clock(), user)

    def forget(self, token: str) -> None:
        self._entries.pop(_digest(token), None)

    def forget_user(self, user_id: object) -> None:
        """Every cached session of a user (a password change ends them all)."""
        for key in [k for k, (_, user) in self._entries.items() if user.id == user_id]:
            del self._entries[key]

    def _evict_expired(self) -> None:
        now = self._clock()
        for key in [k for k, (at, _) in self._entries.items() if now - at >= self.ttl_s]:
            del self._entries[key]


__all__ = ["DEFAULT_TTL_S", "SessionCache"]
