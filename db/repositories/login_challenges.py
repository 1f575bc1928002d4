"""The step between a sign-in's password and its second factor: a short-lived challenge.

A correct password of a user with two-factor sign-in opens a challenge instead of a session:
an opaque token (32 random bytes) handed to the client, stored only as SHA-256 like a
session. The second step presents it with a code. It names the user, so the code is
checked (and throttled) for that user only; it lasts ``ttl_s`` (minutes), may carry several
attempts (each counted by the sign-in throttle), and is closed by the one that succeeds.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from db.models import ConsoleUser as UserRow
from db.models import LoginChallenge
from db.repositories._common import aware
from db.repositories.sessions import MAX_TOKEN_LENGTH, new_token, token_digest


def open_challenge(session: Session, user_id: uuid.UUID, now: datetime, ttl_s: int) -> str:
    """A new challenge for ``user_id``; the token (shown once). Quiet ones are pruned."""
    aware("now", now)
    prune(session, now)
    token = new_token()
    session.add(
        LoginChallenge(
            token_sha256=token_digest(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    session.flush()
    return token


def challenged_user(session: Session, token: str, now: datetime) -> tuple[uuid.UUID, str] | None:
    """``(user id, username)`` of an open challenge: known, not used, not expired, its user
    active. ``None`` otherwise."""
    aware("now", now)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    found = session.execute(
        select(LoginChallenge, UserRow)
        .join(UserRow, UserRow.id == LoginChallenge.user_id)
        .where(LoginChallenge.token_sha256 == token_digest(token))
    ).one_or_none()
    if found is None:
        return None
    challenge, user = found
    if challenge.used_at is not None or now >= challenge.expires_at or not user.is_active:
        return None
    return user.id, user.username


def close_challenge(session: Session, token: str, now: datetime) -> bool:
    """Mark the challenge used; ``False`` if it was used (or unknown) already, so of two
    second steps racing with one challenge only one opens a session."""
    row = session.get(
        LoginChallenge, token_digest(token), with_for_update=True, populate_existing=True
    )
    if row is None or row.used_at is not None:
        return False
    row.used_at = now
    session.flush()
    return True


def prune(session: Session, now: datetime) -> int:
    result = session.execute(
        delete(LoginChallenge)
        .where(or_(LoginChallenge.expires_at <= now, LoginChallenge.used_at.is_not(None)))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


__all__ = ["challenged_user", "close_challenge", "open_challenge", "prune"]
