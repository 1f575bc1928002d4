"""The nonce store every API worker shares: a replayed partner request is refused by all.

``remember`` is one ``INSERT .. ON CONFLICT DO NOTHING`` on the primary key
``(key_id, nonce)``: check and insert are a single atomic statement, so two concurrent
replays on two workers cannot both pass. A pair stays refused until :func:`prune_nonces`
deletes it after ``expires_at`` -- stricter than the in-memory store (which forgets an
expired pair at once), and the difference never matters for random nonces: a request with an
expired nonce is refused as stale by the timestamp window anyway.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from db.models import ApiNonce

#: Every this many ``remember`` calls, a store also prunes expired pairs (cheap: indexed).
DEFAULT_PRUNE_EVERY: Final = 1000


def remember_nonce(session: Session, key_id: str, nonce: str, expires_at: datetime) -> bool:
    """``True`` if the pair was new and is now remembered, ``False`` if already there."""
    statement = (
        insert(ApiNonce)
        .values(key_id=key_id, nonce=nonce, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=[ApiNonce.key_id, ApiNonce.nonce])
    )
    result = session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


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


__all__ = ["DEFAULT_PRUNE_EVERY", "PgNonceStore", "prune_nonces", "remember_nonce"]
