"""Console sessions: an opaque bearer token for the user, its SHA-256 in the database.

The token is 32 random bytes, URL-safe base64 (43 characters), fit for a cookie. Only its
SHA-256 is stored, so a copy of the database (or of a backup) opens no session; a fast hash is
enough because the token has 256 bits of entropy, nothing to brute-force.

Two timeouts, both fixed when the session opens: ``expires_at`` is absolute; ``idle_s`` is
measured from ``last_seen_at``, which each successful check moves forward. A reader passes
its own idle limit too and the stricter one applies, so the console can end sessions sooner
than the API but never keep one alive that the API has let lapse. Times are passed in
(``now``), so tests and the console agree on a clock.

A session is bound to the user it was opened for (the token's row names the user; the role
is read from the user on every check), and ends at sign-out, at a password change (every
session of the user) or when the user is disabled.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from db.models import ConsoleSession, SecondFactor
from db.models import ConsoleUser as UserRow
from db.repositories._common import as_uuid, aware
from db.repositories.errors import InvalidInput, NotFound
from db.repositories.users import ConsoleUser, view_of

#: A token longer than this is not one of ours; refuse it before hashing.
MAX_TOKEN_LENGTH: Final = 128


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def open_session(
    session: Session,
    user_id: uuid.UUID | str,
    now: datetime,
    idle_s: int,
    absolute_s: int,
) -> str:
    """Open a session for an active user; the token to hand to the browser (shown once)."""
    if idle_s <= 0 or absolute_s <= 0:
        raise InvalidInput("session timeouts must be positive")
    aware("now", now)
    key = as_uuid(user_id)
    user = None if key is None else session.get(UserRow, key)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if not user.is_active:
        raise InvalidInput(f"user {user.username!r} is not active")
    token = new_token()
    session.add(
        ConsoleSession(
            token_sha256=token_digest(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=absolute_s),
            idle_s=idle_s,
        )
    )
    session.flush()
    return token


def _find(session: Session, digest: bytes) -> tuple[ConsoleSession, UserRow, bool] | None:
    """The session row, its user, and whether the user has a second factor."""
    found = session.execute(
        select(ConsoleSession, UserRow, SecondFactor.confirmed_at)
        .join(UserRow, UserRow.id == ConsoleSession.user_id)
        .outerjoin(SecondFactor, SecondFactor.user_id == UserRow.id)
        .where(ConsoleSession.token_sha256 == digest)
    ).one_or_none()
    if found is None:
        return None
    row, user, confirmed_at = found
    return row, user, confirmed_at is not None


def _alive(row: ConsoleSession, user: UserRow, now: datetime, idle_s: int) -> bool:
    idle_limit = timedelta(seconds=min(idle_s, row.idle_s))
    return (
        row.revoked_at is None
        and now < row.expires_at
        and now - row.last_seen_at < idle_limit
        and user.is_active
    )


def session_user(session: Session, token: str, now: datetime, idle_s: int) -> ConsoleUser | None:
    """The user behind ``token``, or ``None`` when the session is unknown, revoked, past its
    absolute end, idle for its own limit or ``idle_s`` seconds or more (the smaller), or its
    user was deactivated (a password
    change revokes the user's sessions). A live session's ``last_seen_at`` moves to ``now``."""
    aware("now", now)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = token_digest(token)
    found = _find(session, digest)
    if found is None:
        return None
    row, user, second_factor = found
    if not _alive(row, user, now, idle_s):
        return None
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_sha256 == digest)
        .values(last_seen_at=func.greatest(ConsoleSession.last_seen_at, now))
        .execution_options(synchronize_session=False)
    )
    session.expire(row, ["last_seen_at"])
    return view_of(user, second_factor)


def peek_session_user(
    session: Session, token: str, now: datetime, idle_s: int
) -> ConsoleUser | None:
    """Like :func:`session_user` but read-only: ``last_seen_at`` stays where it is.

    For checks that are not the user's own activity (a page refreshing itself every second
    must not keep an abandoned session alive past its idle limit).
    """
    aware("now", now)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    found = _find(session, token_digest(token))
    if found is None:
        return None
    row, user, second_factor = found
    if not _alive(row, user, now, idle_s):
        return None
    return view_of(user, second_factor)


def close_session(session: Session, token: str, now: datetime | None = None) -> bool:
    """Log out: revoke the session; ``True`` if it was open."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    result = session.execute(
        update(ConsoleSession)
        .where(
            ConsoleSession.token_sha256 == token_digest(token),
            ConsoleSession.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC) if now is None else aware("now", now))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def prune_sessions(session: Session, now: datetime) -> int:
    """Delete sessions that can never be used again (revoked or past their absolute end)."""
    result = session.execute(
        delete(ConsoleSession)
        .where(or_(ConsoleSession.expires_at <= now, ConsoleSession.revoked_at.is_not(None)))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


__all__ = [
    "MAX_TOKEN_LENGTH",
    "close_session",
    "new_token",
    "open_session",
    "peek_session_user",
    "prune_sessions",
    "session_user",
    "token_digest",
]
