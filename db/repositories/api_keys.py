"""Partner API keys: issue, look up for request verification, revoke, list.

A key has a public id (``kp_`` + 16 URL-safe characters, sent in ``X-Keeper-Key``) and a
secret (``ks_`` + 43 URL-safe characters, 256 random bits) that the partner uses as its HMAC
key: the secret's bytes are its UTF-8 encoding. HMAC verification needs the secret itself,
so it is stored sealed by :class:`~db.crypto.SecretBox`, never hashed; it is returned exactly
once, by :func:`issue_api_key`. The prefixes let secret scanners recognise a leaked value.

:class:`PgKeyLookup` is a :class:`~ingest_api.signing.KeyLookup` reading one row per request
(the API serves keys from memory instead, :mod:`ingest_api.key_ring`, which polls them with
:func:`key_states` and :func:`sealed_secrets`: ADR 0006). Its ``get`` never
writes: the verifier looks a key up *before* checking the signature, so recording use there
would count forged requests and let anyone cause writes. ``last_used_at`` is written only by
:meth:`PgKeyLookup.mark_used`, which the API may call after a request verified, and which
writes at most once per key per ``touch_interval_s`` (one UPDATE a minute per busy key).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.crypto import SealError, SecretBox
from db.models import Partner, PartnerApiKey
from db.repositories import audit
from db.repositories.errors import InvalidInput, NotFound
from domain.api_keys import ApiKey

KEY_ID_PREFIX: Final = "kp_"
SECRET_PREFIX: Final = "ks_"  # noqa: S105 - a public prefix, not a secret
#: Seconds between two ``last_used_at`` writes for one key.
DEFAULT_TOUCH_INTERVAL_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What may be shown about a key: everything except its secret."""

    key_id: str
    partner_id: str
    status: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def _info(row: PartnerApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.key_id,
        partner_id=row.partner_id,
        status=row.status,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def new_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_urlsafe(12)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def issue_api_key(session: Session, box: SecretBox, partner_id: str, actor: str) -> tuple[str, str]:
    """A new active key for ``partner_id``: ``(key_id, secret)``. Show the secret once; it
    cannot be read back through any other function."""
    if session.get(Partner, partner_id) is None:
        raise NotFound(f"partner {partner_id!r} does not exist")
    key_id, secret = new_key_id(), new_secret()
    row = PartnerApiKey(
        key_id=key_id,
        partner_id=partner_id,
        secret_encrypted=box.seal(secret).encode("ascii"),
        status="active",
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_key.issue",
        entity="api_key",
        entity_id=key_id,
        before=None,
        after={"key_id": key_id, "partner_id": partner_id, "status": "active"},
    )
    return key_id, secret


def find_api_key(session: Session, box: SecretBox, key_id: str) -> ApiKey | None:
    """The key as the verifier needs it (partner, secret bytes, active), or ``None``.

    A secret that no longer opens (a different data key, a corrupt row) raises
    :class:`~db.crypto.SealError`: that is an operations fault, not an unknown key.
    """
    row = session.get(PartnerApiKey, key_id)
    if row is None:
        return None
    secret = box.open(row.secret_encrypted.decode("ascii"))
    return ApiKey(
        partner_id=row.partner_id, secret=secret.encode("utf-8"), active=row.status == "active"
    )


def revoke_api_key(session: Session, key_id: str, actor: str, now: datetime | None = None) -> bool:
    """Revoke ``key_id``; ``True`` if it was active, ``False`` if already revoked."""
    row = session.get(PartnerApiKey, key_id, with_for_update=True)
    if row is None:
        raise NotFound(f"API key {key_id!r} does not exist")
    if row.status == "revoked":
        return False
    before = {"key_id": key_id, "partner_id": row.partner_id, "status": row.status}
    row.status = "revoked"
    row.revoked_at = now or datetime.now(UTC)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_key.revoke",
        entity="api_key",
        entity_id=key_id,
        before=before,
        after=before | {"status": "revoked", "revoked_at": row.revoked_at},
    )
    return True


def list_api_keys(session: Session, partner_id: str) -> list[ApiKeyInfo]:
    """A partner's keys, newest first, without their secrets."""
    rows = session.scalars(
        select(PartnerApiKey)
        .where(PartnerApiKey.partner_id == partner_id)
        .order_by(PartnerApiKey.created_at.desc(), PartnerApiKey.key_id)
    )
    return [_info(row) for row in rows]


def rotate_api_key(
    session: Session, box: SecretBox, key_id: str, actor: str, now: datetime | None = None
) -> tuple[str, str]:
    """Replace ``key_id`` at once: a new active key for the same partner, the old one
    revoked, in one transaction; ``(new key_id, secret)`` (show the secret once).

    For a rotation without a gap, issue a second key instead, let the partner switch, then
    revoke the old one.
    """
    row = session.get(PartnerApiKey, key_id, with_for_update=True)
    if row is None:
        raise NotFound(f"API key {key_id!r} does not exist")
    if row.status == "revoked":
        raise InvalidInput(f"API key {key_id!r} is revoked already; issue a new key instead")
    new_id, secret = issue_api_key(session, box, row.partner_id, actor)
    revoke_api_key(session, key_id, actor, now)
    audit.record(
        session,
        actor=actor,
        action="api_key.rotate",
        entity="api_key",
        entity_id=key_id,
        before={"key_id": key_id, "partner_id": row.partner_id, "status": "active"},
        after={"key_id": new_id, "partner_id": row.partner_id, "replaces": key_id},
    )
    return new_id, secret


def list_all_api_keys(session: Session) -> list[ApiKeyInfo]:
    """Every partner's keys (partner, then newest first), without their secrets."""
    rows = session.scalars(
        select(PartnerApiKey).order_by(
            PartnerApiKey.partner_id, PartnerApiKey.created_at.desc(), PartnerApiKey.key_id
        )
    )
    return [_info(row) for row in rows]


def touch_api_key(session: Session, key_id: str, now: datetime, interval_s: float) -> bool:
    """Set ``last_used_at = now`` unless it was set less than ``interval_s`` ago."""
    result = session.execute(
        update(PartnerApiKey)
        .where(
            PartnerApiKey.key_id == key_id,
            or_(
                PartnerApiKey.last_used_at.is_(None),
                PartnerApiKey.last_used_at < now - timedelta(seconds=interval_s),
            ),
        )
        .values(last_used_at=func.greatest(PartnerApiKey.last_used_at, now))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True, slots=True)
class KeyState:
    """A key as the API's in-memory key ring polls it: no secret."""

    key_id: str
    partner_id: str
    active: bool


def key_states(session: Session) -> list[KeyState]:
    """Every key's partner and status: one narrow scan, polled often by each API process."""
    rows = session.execute(
        select(PartnerApiKey.key_id, PartnerApiKey.partner_id, PartnerApiKey.status)
    )
    return [KeyState(key_id, partner_id, status == "active") for key_id, partner_id, status in rows]


def sealed_secrets(session: Session, key_ids: Sequence[str]) -> dict[str, str]:
    """The sealed secrets of ``key_ids`` (a key's secret never changes, so a reader fetches
    each one once)."""
    if not key_ids:
        return {}
    rows = session.execute(
        select(PartnerApiKey.key_id, PartnerApiKey.secret_encrypted).where(
            PartnerApiKey.key_id.in_(list(key_ids))
        )
    )
    return {key_id: sealed.decode("ascii") for key_id, sealed in rows}


def touch_api_keys(
    session: Session, key_ids: Sequence[str], now: datetime, interval_s: float
) -> int:
    """:func:`touch_api_key` for many keys in one UPDATE; the number of rows moved."""
    if not key_ids:
        return 0
    result = session.execute(
        update(PartnerApiKey)
        .where(
            PartnerApiKey.key_id.in_(list(key_ids)),
            or_(
                PartnerApiKey.last_used_at.is_(None),
                PartnerApiKey.last_used_at < now - timedelta(seconds=interval_s),
            ),
        )
        .values(last_used_at=func.greatest(PartnerApiKey.last_used_at, now))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


class PgKeyLookup:
    """:class:`~ingest_api.signing.KeyLookup` over ``partner_api_keys``.

    Each ``get`` runs one primary-key SELECT in a worker thread (psycopg2 blocks), so a
    revocation takes effect on the very next request. Nothing is cached.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        box: SecretBox,
        *,
        touch_interval_s: float = DEFAULT_TOUCH_INTERVAL_S,
    ) -> None:
        self._sessions = session_factory
        self._box = box
        self._touch_interval_s = touch_interval_s
        self._touched_at: dict[str, float] = {}

    async def get(self, key_id: str) -> ApiKey | None:
        return await asyncio.to_thread(self._get, key_id)

    def _get(self, key_id: str) -> ApiKey | None:
        with self._sessions() as session:
            return find_api_key(session, self._box, key_id)

    async def mark_used(self, key_id: str) -> None:
        """Record that ``key_id`` signed a verified request. Cheap: this process skips the
        database entirely for a key it touched within ``touch_interval_s``, and the UPDATE
        itself skips rows touched recently by another process."""
        mono = time.monotonic()
        last = self._touched_at.get(key_id)
        if last is not None and mono - last < self._touch_interval_s:
            return
        self._touched_at[key_id] = mono
        await asyncio.to_thread(self._touch, key_id)

    def _touch(self, key_id: str) -> None:
        with self._sessions.begin() as session:
            touch_api_key(session, key_id, datetime.now(UTC), self._touch_interval_s)


__all__ = [
    "KEY_ID_PREFIX",
    "SECRET_PREFIX",
    "ApiKeyInfo",
    "KeyState",
    "PgKeyLookup",
    "SealError",
    "find_api_key",
    "issue_api_key",
    "key_states",
    "list_all_api_keys",
    "list_api_keys",
    "new_key_id",
    "new_secret",
    "revoke_api_key",
    "rotate_api_key",
    "sealed_secrets",
    "touch_api_key",
    "touch_api_keys",
]
