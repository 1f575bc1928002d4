"""Small helpers the repositories share (private to the package)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Final, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Base
from db.repositories.errors import InvalidInput, RepositoryError, StaleVersion
from domain.errors import DomainError

T = TypeVar("T")

SLUG: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class Unset(Enum):
    """Marks an update argument the caller did not give (``None`` is a real value there)."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


def constraint_of(error: IntegrityError) -> str | None:
    """Name of the constraint PostgreSQL says was violated (psycopg2 diagnostics)."""
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name if isinstance(name, str) else None


def insert(
    session: Session,
    row: Base,
    conflicts: Mapping[str, Callable[[], RepositoryError]],
) -> None:
    """Add and flush ``row`` inside a savepoint, turning a named constraint violation into
    the caller's error; the surrounding transaction stays usable either way."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as error:
        make = conflicts.get(constraint_of(error) or "")
        if make is None:
            raise
        raise make() from None


def slug(field: str, value: str) -> str:
    if not isinstance(value, str) or not SLUG.fullmatch(value):
        raise InvalidInput(f"{field} must be a lowercase slug ([a-z0-9_-], 1-63 characters)")
    return value


def text(field: str, value: str, max_len: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise InvalidInput(f"{field} must be non-empty text of at most {max_len} characters")
    return value.strip()


def domain_checked(check: Callable[[object], T], value: object) -> T:
    """Run a domain validator, turning its refusal into :class:`InvalidInput`."""
    try:
        return check(value)
    except DomainError as error:
        raise InvalidInput(error.message) from None


def check_version(entity: str, entity_id: str, expected: int | None, actual: int) -> None:
    if expected is not None and expected != actual:
        raise StaleVersion(entity, entity_id, expected, actual)


def aware(field: str, moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{field} must be timezone-aware")
    return moment


def as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    """``value`` as a UUID, or ``None`` when it is not one (then no row can match it)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None
