"""Two-factor sign-in of console users (TOTP, RFC 6238): the sealed secret, the recovery
codes, and the short-lived challenge between a sign-in's two steps.

Nothing here opens anything in clear: the TOTP secret is sealed with ``KEEPER_DATA_KEY``
(``db.crypto.SecretBox``, as API key secrets are: a TOTP check needs the secret itself, a
hash would not do), recovery codes are argon2id hashes (as passwords are), and a challenge
is stored as the SHA-256 of its token (as a session is).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, CreatedAt


class SecondFactor(Base):
    """A user's TOTP secret. ``confirmed_at`` is NULL while enrolment waits for the first
    code; ``last_step`` is the time step (unix time // 30) of the last accepted code, so a
    code is never accepted twice (RFC 6238, section 5.2)."""

    __tablename__ = "console_second_factors"
    __table_args__ = (
        CheckConstraint("length(secret_sealed) > 0", name="secret_sealed_not_empty"),
        CheckConstraint("last_step IS NULL OR last_step >= 0", name="last_step_not_negative"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_sealed: Mapped[str]
    confirmed_at: Mapped[datetime | None]
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[CreatedAt]


class RecoveryCode(Base):
    """One single-use recovery code: ``lookup`` is its first group (not secret, it finds the
    row), ``code_hash`` the argon2id hash of the whole code; ``used_at`` set on its one use."""

    __tablename__ = "console_recovery_codes"
    __table_args__ = (
        UniqueConstraint("user_id", "lookup"),
        CheckConstraint("code_hash LIKE '$argon2id$%'", name="code_hash_argon2id"),
        CheckConstraint("length(lookup) BETWEEN 1 AND 16", name="lookup_length"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    lookup: Mapped[str]
    code_hash: Mapped[str]
    used_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]


class LoginChallenge(Base):
    """Between a correct password and the code: the token the first step answered with, as
    SHA-256. Usable until ``expires_at`` for several codes (each throttled), and closed by
    the one that succeeds."""

    __tablename__ = "login_challenges"
    __table_args__ = (
        CheckConstraint("octet_length(token_sha256) = 32", name="token_sha256_length"),
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
    )

    token_sha256: Mapped[bytes] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
