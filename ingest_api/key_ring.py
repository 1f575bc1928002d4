"""Partner API keys served from memory, polled from PostgreSQL (ADR 0006).

Every request needs its key's secret to check the HMAC; reading and decrypting it from the
database on each request was one round trip and one decrypt per create. The key ring keeps
every key in memory instead, secrets decrypted, and polls ``partner_api_keys`` every
``refresh_s`` with one narrow query (id, partner, status). A key seen for the first time
costs one more query for its sealed secret and one decrypt; a secret never changes (rotation
issues a new key), so that happens once per key and process.

Revocation bound: the ring counts as fresh for ``max_stale_s`` after the start of its last
successful poll, and a lookup on a ring older than that polls first (and fails with the
database when it cannot). A revocation committed at ``T`` is therefore refused by every
request verified after ``T + max_stale_s``, whatever the poller is doing.

A key id the ring does not hold is read from the database by itself (a key issued since the
last poll must work at once, as it always did); unknown ids thus cost what they always cost,
and admission bounds how many are in flight.

``last_used_at`` is recorded in batches: :meth:`KeyRing.mark_used` only notes the key, and
the poller writes the noted keys in one UPDATE (at most once per ``touch_interval_s`` per
key, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from db.crypto import SecretBox
from db.repositories.api_keys import (
    DEFAULT_TOUCH_INTERVAL_S,
    KeyState,
    find_api_key,
    key_states,
    sealed_secrets,
    touch_api_keys,
)
from domain.api_keys import ApiKey

log = logging.getLogger(__name__)

DEFAULT_REFRESH_S: Final = 0.25
DEFAULT_MAX_STALE_S: Final = 1.0


class KeyRing:
    """:class:`~ingest_api.signing.KeyLookup` from memory, refreshed in the background."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        box: SecretBox,
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        max_stale_s: float = DEFAULT_MAX_STALE_S,
        touch_interval_s: float = DEFAULT_TOUCH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < refresh_s < max_stale_s:
            raise ValueError("refresh_s must be positive and below max_stale_s")
        self._sessions = session_factory
        self._box = box
        self._refresh_s = refresh_s
        self._max_stale_s = max_stale_s
        self._touch_interval_s = touch_interval_s
        self._clock = clock
        self._keys: dict[str, ApiKey] = {}
        self._fresh_at = -float("inf")  # monotonic start of the last successful poll
        self._polling: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._used: set[str] = set()
        self._touched_at: dict[str, float] = {}
        #: Database round trips made by lookups (not the poller), for tests and benchmarks.
        self.lookups = 0

    def __len__(self) -> int:
        return len(self._keys)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every key once (a database that does not answer stops the start), then poll."""
        await self.refresh()
        self._poller = asyncio.create_task(self._poll_forever(), name="key-ring")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        with contextlib.suppress(Exception):
            await self._flush_used()

    # --- KeyLookup ------------------------------------------------------------------------

    async def get(self, key_id: str) -> ApiKey | None:
        if self._clock() - self._fresh_at > self._max_stale_s:
            await self.refresh()  # raises when the database cannot say: no stale answer
        key = self._keys.get(key_id)
        if key is None:
            self.lookups += 1
            key = await asyncio.to_thread(self._read_one, key_id)
            if key is not None:
                self._keys[key_id] = key
        return key

    async def mark_used(self, key_id: str) -> None:
        """Note that ``key_id`` signed a verified request; the poller writes it (no I/O
        here: async only to match :class:`~db.repositories.api_keys.PgKeyLookup`)."""
        last = self._touched_at.get(key_id)
        if last is None or self._clock() - last >= self._touch_interval_s:
            self._used.add(key_id)

    # --- polling --------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Poll now; concurrent callers share one poll."""
        if self._polling is None or self._polling.done():
            self._polling = asyncio.create_task(self._poll_once(), name="key-ring-poll")
        await asyncio.shield(self._polling)

    async def _poll_once(self) -> None:
        started = self._clock()
        self._keys = await asyncio.to_thread(self._load, dict(self._keys))
        self._fresh_at = started

    def _load(self, known: dict[str, ApiKey]) -> dict[str, ApiKey]:
        with self._sessions() as session:
            states = key_states(session)
            new_ids = [state.key_id for state in states if state.key_id not in known]
            sealed = sealed_secrets(session, new_ids)
        return {state.key_id: self._key(state, known, sealed) for state in states}

    def _key(self, state: KeyState, known: dict[str, ApiKey], sealed: dict[str, str]) -> ApiKey:
        old = known.get(state.key_id)
        secret = old.secret if old is not None else self._box.open(sealed[state.key_id]).encode()
        return ApiKey(partner_id=state.partner_id, secret=secret, active=state.active)

    def _read_one(self, key_id: str) -> ApiKey | None:
        with self._sessions() as session:
            return find_api_key(session, self._box, key_id)

    async def _poll_forever(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
                await self._flush_used()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    log.warning(
                        "key ring: poll failed (%s, %d in a row)", type(exc).__name__, failures
                    )
            else:
                failures = 0

    async def _flush_used(self) -> None:
        if not self._used:
            return
        used, self._used = sorted(self._used), set()
        now = self._clock()
        for key_id in used:
            self._touched_at[key_id] = now
        await asyncio.to_thread(self._touch, used)

    def _touch(self, key_ids: list[str]) -> None:
        with self._sessions.begin() as session:
            touch_api_keys(session, key_ids, datetime.now(UTC), self._touch_interval_s)


__all__ = ["DEFAULT_MAX_STALE_S", "DEFAULT_REFRESH_S", "KeyRing"]
