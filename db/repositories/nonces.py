"""The nonce store every API worker shares: a replayed partner request is refused by all.

``remember`` is one ``INSERT .. ON CONFLICT DO NOTHING`` on the primary key
``(key_id, nonce)``: check and insert are a single atomic statement, so two concurrent
replays on two workers cannot both pass. A pair stays refused until :func:`prune_nonces`
deletes it after ``expires_at`` -- stricter than the in-memory store (which forgets an
expired pair at once), and the difference never matters for random nonces: a request with an
expired nonce is refused as stale by the timestamp window anyway.

:class:`BatchedNonceStore` is the API's store: a group commit. While one INSERT is on its
way to the database, the nonces of every request that arrives meanwhile wait together, and
the next INSERT carries all of them (``INSERT .. VALUES (..), (..) ON CONFLICT DO NOTHING
RETURNING``); each request learns from the returned pairs whether its nonce was new. So a
burst of requests costs one round trip, not one each, and the answer is as strict as a
single insert: the database's primary key decides, across every API process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from db.models import ApiNonce

#: Every this many ``remember`` calls, a store also prunes expired pairs (cheap: indexed).
DEFAULT_PRUNE_EVERY: Final = 1000
#: The most nonces one INSERT of :class:`BatchedNonceStore` carries.
DEFAULT_MAX_BATCH: Final = 500

#: ``(key_id, nonce, expires_at)`` of one request.
NonceRow = tuple[str, str, datetime]


def remember_nonce(session: Session, key_id: str, nonce: str, expires_at: datetime) -> bool:
    """``True`` if the pair was new and is now remembered, ``False`` if already there."""
    statement = (
        insert(ApiNonce)
        .values(key_id=key_id, nonce=nonce, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=[ApiNonce.key_id, ApiNonce.nonce])
    )
    result = session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


def remember_nonces(session: Session, rows: Sequence[NonceRow]) -> set[tuple[str, str]]:
    """Insert every pair not yet remembered, in one statement; the pairs that were new.

    A pair repeated within ``rows`` is inserted once and reported once: the caller decides
    which of its requests that was (the first).
    """
    if not rows:
        return set()
    statement = (
        insert(ApiNonce)
        .values([{"key_id": k, "nonce": n, "expires_at": e} for k, n, e in rows])
        .on_conflict_do_nothing(index_elements=[ApiNonce.key_id, ApiNonce.nonce])
        .returning(ApiNonce.key_id, ApiNonce.nonce)
    )
    return {(key_id, nonce) for key_id, nonce in session.execute(statement)}


def prune_nonces(session: Session, now: datetime) -> int:
    """Forget pairs whose request window closed before ``now``; the number forgotten."""
    result = session.execute(
        delete(ApiNonce)
        .where(ApiNonce.expires_at < now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


class PgNonceStore:
    """:class:`~ingest_api.signing.NonceStore` over ``api_nonces``; commits each call itself
    (it is an adapter at the edge, not a repository inside someone's transaction)."""

    def __init__(
        self, session_factory: sessionmaker[Session], *, prune_every: int = DEFAULT_PRUNE_EVERY
    ) -> None:
        if prune_every <= 0:
            raise ValueError("prune_every must be positive")
        self._sessions = session_factory
        self._prune_every = prune_every
        self._calls = 0

    async def remember(self, key_id: str, nonce: str, expires_at_s: float) -> bool:
        self._calls += 1
        prune = self._calls % self._prune_every == 0
        return await asyncio.to_thread(self._remember, key_id, nonce, expires_at_s, prune)

    def _remember(self, key_id: str, nonce: str, expires_at_s: float, prune: bool) -> bool:
        expires_at = datetime.fromtimestamp(expires_at_s, tz=UTC)
        with self._sessions.begin() as session:
            inserted = remember_nonce(session, key_id, nonce, expires_at)
        if prune:
            with self._sessions.begin() as session:
                prune_nonces(session, datetime.now(UTC))
        return inserted


class _Waiting:
    __slots__ = ("future", "row")

    def __init__(self, row: NonceRow, future: asyncio.Future[bool]) -> None:
        self.row = row
        self.future = future


class BatchedNonceStore:
    """:class:`~ingest_api.signing.NonceStore` over ``api_nonces`` with group commit.

    No timer: the first request of an idle moment is written at once, alone; requests that
    arrive while a write is in flight form the next batch. Latency is therefore never worse
    than one write behind another, and a burst of N concurrent requests costs about
    N / batch-size round trips. A failed write fails every request of its batch (the caller
    answers ``503``), and none of their nonces is known to be remembered -- the partner
    retries with a fresh nonce.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        prune_every: int = DEFAULT_PRUNE_EVERY,
    ) -> None:
        if max_batch <= 0 or prune_every <= 0:
            raise ValueError("max_batch and prune_every must be positive")
        self._sessions = session_factory
        self._max_batch = max_batch
        self._prune_every = prune_every
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._written = 0
        #: Round trips made and nonces carried, for tests and benchmarks.
        self.batches = 0
        self.nonces = 0

    async def remember(self, key_id: str, nonce: str, expires_at_s: float) -> bool:
        expires_at = datetime.fromtimestamp(expires_at_s, tz=UTC)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting((key_id, nonce, expires_at), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="nonce-writer")
        return await future

    async def close(self) -> None:
        """Wait for the writes in flight (the API's shutdown)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer

    async def _write_all(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            self._written += 1
            prune = self._written % self._prune_every == 0
            try:
                inserted = await asyncio.to_thread(self._write, [w.row for w in batch], prune)
            except Exception as exc:
                for waiting in batch:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)
                continue
            self.batches += 1
            self.nonces += len(batch)
            for waiting in batch:
                pair = waiting.row[:2]
                new = pair in inserted
                inserted.discard(pair)  # a repeat within the batch is the replay
                if not waiting.future.done():
                    waiting.future.set_result(new)

    def _write(self, rows: list[NonceRow], prune: bool) -> set[tuple[str, str]]:
        with self._sessions.begin() as session:
            inserted = remember_nonces(session, rows)
        if prune:
            with self._sessions.begin() as session:
                prune_nonces(session, datetime.now(UTC))
        return inserted


__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_PRUNE_EVERY",
    "BatchedNonceStore",
    "PgNonceStore",
    "prune_nonces",
    "remember_nonce",
    "remember_nonces",
]
