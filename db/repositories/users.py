"""Console users: argon2id password hashes, roles, password change.

Passwords are hashed with argon2-cffi's ``PasswordHasher`` (argon2id, RFC 9106 "low memory"
profile: 64 MiB, 3 passes), the only format the ``console_users`` CHECK accepts.
:func:`authenticate` does the same work whether or not the user exists (it verifies against a
dummy hash), so response times do not reveal which usernames are valid.

A ``partner`` user is bound to one partner for life: it is created with its partner, and
no role change moves a user into or out of the ``partner`` role (a staff account never
becomes a partner's, nor the reverse; create another user instead).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import CONSOLE_ROLES, ConsoleSession, Partner, SecondFactor
from db.models import ConsoleUser as UserRow
from db.repositories import audit
from db.repositories._common import as_uuid, insert
from db.repositories.errors import AlreadyExists, InvalidInput, NotFound

PARTNER_ROLE: Final = "partner"
MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
_USERNAME: Final = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")

_hasher: Final = PasswordHasher()


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """Who is signed in to the console; never carries the password hash.

    ``second_factor``: two-factor sign-in is on (enrolment confirmed);
    ``must_change_password``: an admin forced a reset, so the session may only set a new
    password; ``notify_desktop``: opted in to browser notifications.
    """

    id: uuid.UUID
    username: str
    role: str
    password_changed_at: datetime
    second_factor: bool = False
    must_change_password: bool = False
    notify_desktop: bool = False


def view_of(row: UserRow, second_factor: bool) -> ConsoleUser:
    return ConsoleUser(
        id=row.id,
        username=row.username,
        role=row.role,
        password_changed_at=row.password_changed_at,
        second_factor=second_factor,
        must_change_password=row.must_change_password,
        notify_desktop=row.notify_desktop,
    )


def _has_second_factor(session: Session, user_id: uuid.UUID) -> bool:
    confirmed = session.scalar(
        select(SecondFactor.confirmed_at).where(SecondFactor.user_id == user_id)
    )
    return confirmed is not None


def _view(row: UserRow, session: Session) -> ConsoleUser:
    return view_of(row, _has_second_factor(session, row.id))


@cache
def _dummy_hash() -> str:
    """A real argon2id hash of nothing anyone types, for unknown usernames."""
    return _hasher.hash(uuid.uuid4().hex)


def prepare_dummy_hash() -> None:
    """Compute the dummy hash now (at start-up), so the first unknown username is not
    answered slower than a known one."""
    _dummy_hash()


def normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise InvalidInput("username must be 1-64 characters of a-z, 0-9, '.', '_', '@', '-'")
    return name


def check_password_rule(password: str) -> str:
    """``password`` if a new password may be it; :class:`InvalidInput` otherwise."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters long"
        )
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password_rule(password))


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _partner_binding(session: Session, role: str, partner_id: str | None) -> str | None:
    """The partner a new user of ``role`` is bound to: required for ``partner``, refused for
    every other role (the table's CHECK says the same)."""
    if role not in CONSOLE_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(CONSOLE_ROLES)}")
    if role != PARTNER_ROLE:
        if partner_id is not None:
            raise InvalidInput(f"only a {PARTNER_ROLE} user belongs to a partner, not a {role}")
        return None
    if not partner_id:
        raise InvalidInput(f"a {PARTNER_ROLE} user needs the partner it belongs to")
    if session.get(Partner, partner_id) is None:
        raise NotFound(f"partner {partner_id!r} does not exist")
    return partner_id


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    actor: str,
    *,
    partner_id: str | None = None,
) -> ConsoleUser:
    """A new active user; a ``partner`` user needs ``partner_id``, no other role may have one."""
    bound = _partner_binding(session, role, partner_id)
    name = normalise_username(username)
    if session.scalar(select(UserRow.id).where(UserRow.username == name)) is not None:
        raise AlreadyExists(f"user {name!r} already exists")
    row = UserRow(
        id=uuid.uuid4(),
        username=name,
        password_hash=hash_password(password),
        role=role,
        partner_id=bound,
    )
    insert(
        session,
        row,
        {"uq_console_users_username": lambda: AlreadyExists(f"user {name!r} already exists")},
    )
    session.refresh(row, ["password_changed_at", "must_change_password", "notify_desktop"])
    user = _view(row, session)
    audit.record(
        session,
        actor=actor,
        action="user.create",
        entity="user",
        entity_id=str(row.id),
        before=None,
        after={"username": name, "role": role, "is_active": True}
        | ({"partner_id": bound} if bound else {}),
    )
    return user


def get_user(session: Session, username: str) -> ConsoleUser | None:
    row = session.scalars(
        select(UserRow).where(UserRow.username == username.strip().lower())
    ).one_or_none()
    return None if row is None else _view(row, session)


def authenticate(session: Session, username: str, password: str) -> ConsoleUser | None:
    """The user if ``password`` is theirs and they are active, else ``None`` (one answer for
    every failure, after the same amount of hashing work)."""
    try:
        name: str | None = normalise_username(username)
    except InvalidInput:  # no user has such a name: not even worth a query
        name = None
    row = (
        None
        if name is None
        else session.scalars(select(UserRow).where(UserRow.username == name)).one_or_none()
    )
    if row is None or len(password) > MAX_PASSWORD_LENGTH:
        _verify(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        return None
    if not _verify(row.password_hash, password) or not row.is_active:
        return None
    if _hasher.check_needs_rehash(row.password_hash):  # parameters were raised since
        row.password_hash = _hasher.hash(password)
    return _view(row, session)


def change_password(
    session: Session,
    user_id: uuid.UUID | str,
    current_password: str,
    new_password: str,
    *,
    actor: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Replace the password if ``current_password`` is right; ``False`` otherwise.

    ``actor`` defaults to the user (changing one's own password). A new password that breaks
    the length rule, or equals the current one, raises :class:`InvalidInput`
    (``code = "invalid_input"``). A reset an admin forced is done with it.

    Every open session of the user is revoked: whoever might have known the old password
    loses access too. The caller opens a fresh session for the person who changed it.
    """
    key = as_uuid(user_id)
    row = None if key is None else session.get(UserRow, key, with_for_update=True)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    new_hash = hash_password(new_password)
    if not _verify(row.password_hash, current_password):
        return False
    if new_password == current_password:
        raise InvalidInput("the new password must differ from the current one")
    moment = now or datetime.now(UTC)
    row.password_hash = new_hash
    row.password_changed_at = moment
    row.must_change_password = False
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == row.id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=moment)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    audit.record(
        session,
        actor=actor or row.username,
        action="user.password_change",
        entity="user",
        entity_id=str(row.id),
        before=None,
        after={"username": row.username, "password_changed_at": moment},
    )
    return True


@dataclass(frozen=True, slots=True)
class ConsoleUserInfo:
    """A console user as an admin sees it (never the password hash)."""

    id: uuid.UUID
    username: str
    role: str
    is_active: bool
    password_changed_at: datetime
    created_at: datetime
    partner_id: str | None = None


def list_users(session: Session) -> list[ConsoleUserInfo]:
    rows = session.scalars(select(UserRow).order_by(UserRow.username))
    return [
        ConsoleUserInfo(
            id=row.id,
            username=row.username,
            role=row.role,
            is_active=row.is_active,
            password_changed_at=row.password_changed_at,
            created_at=row.created_at,
            partner_id=row.partner_id,
        )
        for row in rows
    ]


def _user_row(session: Session, username: str) -> UserRow:
    row = session.scalars(
        select(UserRow).where(UserRow.username == username.strip().lower()).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"user {username!r} does not exist")
    return row


def _revoke_sessions(session: Session, row: UserRow) -> None:
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == row.id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


def set_user_role(session: Session, username: str, role: str, *, actor: str) -> bool:
    """Give ``username`` another role; ``False`` when it already has it. Takes effect on the
    user's next request (roles are read per request, sessions stay open)."""
    if role not in CONSOLE_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(CONSOLE_ROLES)}")
    row = _user_row(session, username)
    if row.role == role:
        return False
    if PARTNER_ROLE in (row.role, role):
        raise InvalidInput(
            f"a {PARTNER_ROLE} user stays bound to its partner and no staff user becomes one: "
            "create a new user instead"
        )
    before = {"username": row.username, "role": row.role}
    row.role = role
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.role",
        entity="user",
        entity_id=str(row.id),
        before=before,
        after={"username": row.username, "role": role},
    )
    return True


def set_user_active(session: Session, username: str, active: bool, *, actor: str) -> bool:
    """Enable or disable a user; disabling closes their open sessions. ``False`` when the
    user was in that state already."""
    row = _user_row(session, username)
    if row.is_active == active:
        return False
    row.is_active = active
    if not active:
        _revoke_sessions(session, row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        entity="user",
        entity_id=str(row.id),
        before={"username": row.username, "is_active": not active},
        after={"username": row.username, "is_active": active},
    )
    return True


def force_password_reset(
    session: Session,
    username: str,
    *,
    actor: str,
    temporary_password: str | None = None,
    now: datetime | None = None,
) -> bool:
    """An admin forces ``username`` to set a new password at the next sign-in: its sessions
    end now, and the next session may only change the password (the API answers everything
    else ``403 password_change_required``). With ``temporary_password`` the admin also sets
    the password that sign-in will take (for a user who forgot theirs). Audited, never the
    password."""
    if normalise_username(username) == normalise_username(actor):
        raise InvalidInput("change your own password on the My account page")
    new_hash = None if temporary_password is None else hash_password(temporary_password)
    row = _user_row(session, username)
    moment = now or datetime.now(UTC)
    before = {"username": row.username, "must_change_password": row.must_change_password}
    row.must_change_password = True
    if new_hash is not None:
        row.password_hash = new_hash
        row.password_changed_at = moment
    _revoke_sessions(session, row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.password_reset",
        entity="user",
        entity_id=str(row.id),
        before=before,
        after={
            "username": row.username,
            "must_change_password": True,
            "temporary_password_set": new_hash is not None,
        },
    )
    return True


def set_notify_desktop(session: Session, user_id: uuid.UUID, on: bool) -> bool:
    """Opt in to (or out of) browser notifications; ``False`` when already so."""
    key = as_uuid(user_id)
    row = None if key is None else session.get(UserRow, key, with_for_update=True)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    if row.notify_desktop == on:
        return False
    row.notify_desktop = on
    session.flush()
    return True


__all__ = [
    "MIN_PASSWORD_LENGTH",
    "PARTNER_ROLE",
    "ConsoleUser",
    "ConsoleUserInfo",
    "authenticate",
    "change_password",
    "check_password_rule",
    "create_user",
    "force_password_reset",
    "get_user",
    "hash_password",
    "list_users",
    "normalise_username",
    "prepare_dummy_hash",
    "set_notify_desktop",
    "set_user_active",
    "set_user_role",
    "view_of",
]
