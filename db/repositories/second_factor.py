"""Two-factor sign-in of console users: enrolment, checking a code, recovery codes, reset.

The TOTP secret is sealed with the data key (:class:`db.crypto.SecretBox`, as API key
secrets are) and opened only to check a code or to show a pending enrolment again. A code is
checked with the user's row locked (``SELECT .. FOR UPDATE``), and the accepted time step is
stored, so two API processes given the same code at once accept it once (rules in
:mod:`domain.totp`). Recovery codes are argon2id hashes, like passwords, each usable once.

Which roles must have a second factor is a setting (``KEEPER_TOTP_REQUIRED_ROLES``);
``admin`` is always among them (:func:`required_roles`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from db import otp
from db.crypto import SecretBox
from db.models import CONSOLE_ROLES, ConsoleSession, LoginChallenge, RecoveryCode, SecondFactor
from db.models import ConsoleUser as UserRow
from db.repositories import audit
from db.repositories._common import as_uuid, aware
from db.repositories.errors import AlreadyExists, InvalidInput, NotFound
from domain import totp

ISSUER: Final = "Keeper"
RECOVERY_CODES: Final = 10
#: The role that may never sign in without a second factor, whatever the setting says.
ALWAYS_REQUIRED: Final = "admin"

_hasher: Final = PasswordHasher()


def required_roles(setting: str) -> frozenset[str]:
    """The roles named in ``setting`` (comma-separated) plus ``admin``; an unknown role is
    refused, so a typo cannot quietly leave a role without its second factor."""
    named = {part.strip() for part in setting.split(",") if part.strip()}
    unknown = named - set(CONSOLE_ROLES)
    if unknown:
        raise ValueError(
            f"KEEPER_TOTP_REQUIRED_ROLES: unknown role(s) {', '.join(sorted(unknown))}; "
            f"roles are {', '.join(CONSOLE_ROLES)}"
        )
    return frozenset(named | {ALWAYS_REQUIRED})


class Method(StrEnum):
    """How a second factor was proved."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A secret waiting for its first code: shown as a QR code (``uri``) and as text."""

    secret: str
    uri: str


@dataclass(frozen=True, slots=True)
class Status:
    enabled: bool
    confirmed_at: datetime | None
    recovery_codes_left: int


def _user(session: Session, user_id: uuid.UUID | str, *, lock: bool = False) -> UserRow:
    key = as_uuid(user_id)
    row = None if key is None else session.get(UserRow, key, with_for_update=lock)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return row


def _factor(session: Session, user_id: uuid.UUID, *, lock: bool = False) -> SecondFactor | None:
    return session.get(SecondFactor, user_id, with_for_update=lock, populate_existing=lock)


def is_enabled(session: Session, user_id: uuid.UUID) -> bool:
    confirmed = session.scalar(
        select(SecondFactor.confirmed_at).where(SecondFactor.user_id == user_id)
    )
    return confirmed is not None


def status(session: Session, user_id: uuid.UUID) -> Status:
    factor = _factor(session, user_id)
    left = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    confirmed = None if factor is None else factor.confirmed_at
    return Status(confirmed is not None, confirmed, int(left or 0))


def begin_enrolment(
    session: Session, box: SecretBox, user_id: uuid.UUID, *, issuer: str = ISSUER
) -> Enrolment:
    """A fresh secret for the user, stored sealed and pending until a code confirms it (a
    pending one is replaced). Refused while a confirmed factor exists: an admin resets it
    first, so a stolen session cannot swap the factor."""
    user = _user(session, user_id, lock=True)
    factor = _factor(session, user.id, lock=True)
    if factor is not None and factor.confirmed_at is not None:
        raise AlreadyExists(f"user {user.username!r} already has a second factor")
    secret = otp.new_secret()
    if factor is None:
        session.add(SecondFactor(user_id=user.id, secret_sealed=box.seal(secret)))
    else:
        factor.secret_sealed = box.seal(secret)
        factor.last_step = None
    session.flush()
    return Enrolment(secret, otp.provisioning_uri(secret, user.username, issuer))


def pending_enrolment(
    session: Session, box: SecretBox, user_id: uuid.UUID, *, issuer: str = ISSUER
) -> Enrolment | None:
    """The enrolment begun and not yet confirmed, to show its QR code again."""
    factor = _factor(session, user_id)
    if factor is None or factor.confirmed_at is not None:
        return None
    user = _user(session, user_id)
    secret = box.open(factor.secret_sealed)
    return Enrolment(secret, otp.provisioning_uri(secret, user.username, issuer))


def _new_recovery_codes(session: Session, user_id: uuid.UUID) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes: dict[str, str] = {}
    while len(codes) < RECOVERY_CODES:
        code = totp.new_recovery_code()
        codes.setdefault(totp.recovery_lookup(code), code)  # lookups unique per user
    for lookup, code in codes.items():
        session.add(RecoveryCode(user_id=user_id, lookup=lookup, code_hash=_hasher.hash(code)))
    session.flush()
    return list(codes.values())


def confirm_enrolment(
    session: Session, box: SecretBox, user_id: uuid.UUID, code: str, now: datetime
) -> list[str]:
    """Turn the pending secret on if ``code`` is its current code; the recovery codes, in
    clear this once (only their hashes are kept). :class:`InvalidInput` for a wrong code."""
    aware("now", now)
    user = _user(session, user_id, lock=True)
    factor = _factor(session, user.id, lock=True)
    if factor is None or factor.confirmed_at is not None:
        raise InvalidInput("no enrolment is waiting for a code; start again")
    step = totp.matching_step(
        otp.codes_of(box.open(factor.secret_sealed)), code, now.timestamp(), factor.last_step
    )
    if step is None:
        raise InvalidInput("that code is not right; type the code the app shows now")
    factor.confirmed_at = now
    factor.last_step = step
    codes = _new_recovery_codes(session, user.id)
    audit.record(
        session,
        actor=user.username,
        action="user.second_factor_enrol",
        entity="user",
        entity_id=str(user.id),
        before=None,
        after={"username": user.username, "second_factor": "totp", "recovery_codes": len(codes)},
    )
    return codes


def new_recovery_codes(session: Session, user_id: uuid.UUID) -> list[str]:
    """Replace the user's recovery codes (the old ones stop working); audited."""
    user = _user(session, user_id, lock=True)
    if not is_enabled(session, user.id):
        raise InvalidInput("turn two-factor sign-in on first")
    codes = _new_recovery_codes(session, user.id)
    audit.record(
        session,
        actor=user.username,
        action="user.recovery_codes_renew",
        entity="user",
        entity_id=str(user.id),
        before=None,
        after={"username": user.username, "recovery_codes": len(codes)},
    )
    return codes


def verify(
    session: Session, box: SecretBox, user_id: uuid.UUID, code: str, now: datetime
) -> Method | None:
    """How ``code`` proves the user's second factor, or ``None`` (wrong, replayed, a used
    recovery code, or no factor). A TOTP code moves the last accepted step; a recovery code
    is spent (audited). The caller commits."""
    aware("now", now)
    user = _user(session, user_id, lock=True)  # serialises checks of one user
    factor = _factor(session, user.id, lock=True)
    if factor is None or factor.confirmed_at is None:
        return None
    if totp.normalise_code(code) is not None:
        step = totp.matching_step(
            otp.codes_of(box.open(factor.secret_sealed)), code, now.timestamp(), factor.last_step
        )
        if step is None:
            return None
        factor.last_step = step
        session.flush()
        return Method.TOTP
    return _spend_recovery_code(session, user, code, now)


def _spend_recovery_code(
    session: Session, user: UserRow, code: str, now: datetime
) -> Method | None:
    normalised = totp.normalise_recovery_code(code)
    if normalised is None:
        return None
    row = session.scalars(
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.lookup == totp.recovery_lookup(normalised),
            RecoveryCode.used_at.is_(None),
        )
        .with_for_update()
    ).one_or_none()
    if row is None or not _matches(row.code_hash, normalised):
        return None
    row.used_at = now
    session.flush()
    left = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    audit.record(
        session,
        actor=user.username,
        action="user.recovery_code_use",
        entity="user",
        entity_id=str(user.id),
        before=None,
        after={"username": user.username, "recovery_codes_left": int(left or 0)},
    )
    return Method.RECOVERY_CODE


def _matches(stored_hash: str, code: str) -> bool:
    try:
        return _hasher.verify(stored_hash, code)
    except (VerificationError, InvalidHashError):
        return False


def reset(session: Session, username: str, *, actor: str, now: datetime) -> bool:
    """An admin removes a user's second factor (a lost phone): secret, recovery codes and
    open sign-in challenges go, the user's sessions end, and the next sign-in starts a new
    enrolment. ``False`` when the user had none. Audited."""
    aware("now", now)
    row = session.scalars(
        select(UserRow).where(UserRow.username == username.strip().lower()).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"user {username!r} does not exist")
    factor = _factor(session, row.id, lock=True)
    if factor is None:
        return False
    was_confirmed = factor.confirmed_at is not None
    session.delete(factor)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == row.id))
    session.execute(delete(LoginChallenge).where(LoginChallenge.user_id == row.id))
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == row.id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.second_factor_reset",
        entity="user",
        entity_id=str(row.id),
        before={"username": row.username, "second_factor": "totp" if was_confirmed else "pending"},
        after={"username": row.username, "second_factor": None},
    )
    return True


__all__ = [
    "ALWAYS_REQUIRED",
    "ISSUER",
    "RECOVERY_CODES",
    "Enrolment",
    "Method",
    "Status",
    "begin_enrolment",
    "confirm_enrolment",
    "is_enabled",
    "new_recovery_codes",
    "pending_enrolment",
    "required_roles",
    "reset",
    "status",
    "verify",
]
