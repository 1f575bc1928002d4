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
    """A person using the ops console. Only argon2id hashes are accepted, never plain text."""

    __tablename__ = "console_users"
    __table_args__ = (
        CheckConstraint(one_of("role", CONSOLE_ROLES), name="role"),
        CheckConstraint("password_hash LIKE '$argon2id$%'", name="password_hash_argon2id"),
        CheckConstraint(
            "username = lower(username) AND length(username) BETWEEN 1 AND 64",
            name="username_lowercase",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    username: Mapped[str] = mapped_column(unique=True)
    password_hash: Mapped[str]
    role: Mapped[str]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    password_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[CreatedAt]


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
    useless). ``expires_at`` is the absolute end; the idle limit is checked against
    ``last_seen_at`` by the reader, so it can change without rewriting rows.
    """

    __tablename__ = "console_sessions"
    __table_args__ = (
        CheckConstraint("octet_length(token_sha256) = 32", name="token_sha256_length"),
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        CheckConstraint("last_seen_at >= created_at", name="seen_after_created"),
    )

    token_sha256: Mapped[bytes] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[CreatedAt]
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]

    user: Mapped[ConsoleUser] = relationship(lazy="raise")
