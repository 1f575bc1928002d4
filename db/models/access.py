"""Who may act: partner API keys and the nonces they used, console users and their sessions.

Nothing here holds a usable credential in clear: API key secrets are sealed (HMAC needs the
secret itself, so a hash would not do), passwords are argon2id hashes, and a console session
is stored as the SHA-256 of its token, so a copy of the database opens no session.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import API_KEY_STATUSES, CONSOLE_ROLES, Base, CreatedAt, one_of

if TYPE_CHECKING:
    from db.models.config import Partner


class PartnerApiKey(Base):
    """A partner credential. Several may be active at once so keys can be rotated without
    downtime; the secret is stored encrypted (HMAC verification needs it, a hash would not do).
    """

    __tablename__ = "partner_api_keys"
    __table_args__ = (
        CheckConstraint(one_of("status", API_KEY_STATUSES), name="status"),
        CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)", name="revoked_at_iff_revoked"
        ),
    )

    key_id: Mapped[str] = mapped_column(primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    secret_encrypted: Mapped[bytes]
    status: Mapped[str] = mapped_column(server_default="active")
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    partner: Mapped[Partner] = relationship(back_populates="api_keys", lazy="raise")


class ConsoleUser(Base):
    """A person using the ops console. Only argon2id hashes are accepted, never plain text.

    A ``partner`` user belongs to exactly one partner (``partner_id``) and sees only that
    partner's data (the partner portal); every other role has no partner.
    """

    __tablename__ = "console_users"
    __table_args__ = (
        CheckConstraint(one_of("role", CONSOLE_ROLES), name="role"),
        CheckConstraint("password_hash LIKE '$argon2id$%'", name="password_hash_argon2id"),
        CheckConstraint(
            "username = lower(username) AND length(username) BETWEEN 1 AND 64",
            name="username_lowercase",
        ),
        CheckConstraint(
            "(role = 'partner') = (partner_id IS NOT NULL)", name="partner_iff_partner_role"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    username: Mapped[str] = mapped_column(unique=True)
    password_hash: Mapped[str]
    role: Mapped[str]
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True)
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    password_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[CreatedAt]
    #: Set by an admin's forced reset: the next session may only set a new password.
    must_change_password: Mapped[bool] = mapped_column(server_default=text("false"))
    #: Opted in to browser notifications of orders that await a decision.
    notify_desktop: Mapped[bool] = mapped_column(server_default=text("false"))


class ApiNonce(Base):
    """A nonce a partner key already used, remembered until its request could no longer pass
    the timestamp window. The primary key makes "check and remember" one atomic INSERT shared
    by every API worker; rows past ``expires_at`` are pruned.

    No foreign key to ``partner_api_keys``: only nonces of verified requests are stored, and
    this table is written on every partner request, so it stays as lean as possible.
    """

    __tablename__ = "api_nonces"
    __table_args__ = (
        CheckConstraint("length(key_id) BETWEEN 1 AND 64", name="key_id_length"),
        CheckConstraint("length(nonce) BETWEEN 1 AND 64", name="nonce_length"),
    )

    key_id: Mapped[str] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ConsoleSession(Base):
    """A console login. The token itself is only ever in the user's cookie; the row keys on
    its SHA-256 (the token is 256 random bits, so a fast hash is enough to make a leaked table
    useless). ``expires_at`` is the absolute end; ``idle_s`` the idle limit the API set at
    sign-in, checked against ``last_seen_at`` (a reader such as the console may only be
    stricter, so no reader revives a session the API considers idle).
    """

    __tablename__ = "console_sessions"
    __table_args__ = (
        CheckConstraint("octet_length(token_sha256) = 32", name="token_sha256_length"),
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        CheckConstraint("last_seen_at >= created_at", name="seen_after_created"),
        CheckConstraint("idle_s > 0", name="idle_s_positive"),
    )

    token_sha256: Mapped[bytes] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[CreatedAt]
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]
    #: The idle limit the API set when the session opened; a reader may be stricter.
    idle_s: Mapped[int] = mapped_column(server_default=text("1800"))

    user: Mapped[ConsoleUser] = relationship(lazy="raise")


#: What a sign-in throttle counter is kept for: one username, or one client address.
THROTTLE_SCOPES = ("user", "address")


class LoginThrottle(Base):
    """Failed sign-ins of one scope (a username tried, known or not, or a client address)
    and its lock, shared by every API process (rules in ``domain.login_throttle``).

    ``failures`` counts the current window's attempts that have not succeeded, including
    those still being checked; ``level`` the locks in a row, which sets the next lock's
    length. Rows quiet for a window are pruned.
    """

    __tablename__ = "login_throttle"
    __table_args__ = (
        CheckConstraint(one_of("scope", THROTTLE_SCOPES), name="scope"),
        CheckConstraint("length(key) BETWEEN 1 AND 128", name="key_length"),
        CheckConstraint("failures >= 0", name="failures_not_negative"),
        CheckConstraint("level >= 0", name="level_not_negative"),
    )

    scope: Mapped[str] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(primary_key=True)
    failures: Mapped[int] = mapped_column(server_default=text("0"))
    level: Mapped[int] = mapped_column(server_default=text("0"))
    window_started_at: Mapped[datetime]
    last_failure_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
