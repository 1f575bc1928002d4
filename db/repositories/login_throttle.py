"""Sign-in throttle counters in PostgreSQL, so every API process sees the same locks.

Each call locks the rows of the scopes it touches (``SELECT .. FOR UPDATE`` in a fixed
order, after an ``INSERT .. ON CONFLICT DO NOTHING`` creates missing ones), applies the pure
rules of :mod:`domain.login_throttle` and writes the result back: two attempts on two
workers are counted one after the other. The caller commits.

A lock that starts writes an ``auth.lock`` audit row (actor: the username tried, or
``anonymous``; with the client address) in the same transaction. Quiet rows are pruned
whenever a lock starts, so a spray of made-up usernames cannot grow the table for long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models.access import LoginThrottle
from db.repositories import audit
from db.repositories._common import aware
from domain.login_throttle import Counter, Policy, admit, fail, succeed

USER = "user"
ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class Scope:
    """One throttled scope: ``kind`` is ``user`` or ``address``; ``key`` at most 128
    characters (a normalised username, or an address)."""

    kind: str
    key: str
    policy: Policy


@dataclass(frozen=True, slots=True)
class Lock:
    """A lock that started: which scope, until when."""

    scope: Scope
    locked_until: datetime


def _rows(session: Session, scopes: Sequence[Scope], now: datetime) -> list[LoginThrottle]:
    """The scopes' rows, created if missing, locked, in the order of ``scopes``."""
    ordered = sorted({(s.kind, s.key) for s in scopes})
    for _ in range(3):  # a success on another worker may delete a user row between the two
        session.execute(
            insert(LoginThrottle)
            .values(
                [{"scope": kind, "key": key, "window_started_at": now} for kind, key in ordered]
            )
            .on_conflict_do_nothing(index_elements=[LoginThrottle.scope, LoginThrottle.key])
        )
        found = session.scalars(
            select(LoginThrottle)
            .where(tuple_(LoginThrottle.scope, LoginThrottle.key).in_(ordered))
            .order_by(LoginThrottle.scope, LoginThrottle.key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        by_key = {(row.scope, row.key): row for row in found}
        if len(by_key) == len(ordered):
            return [by_key[(s.kind, s.key)] for s in scopes]
    raise RuntimeError("sign-in throttle rows kept disappearing; try again")


def _counter(row: LoginThrottle) -> Counter:
    return Counter(
        window_started_at=row.window_started_at,
        failures=row.failures,
        level=row.level,
        last_failure_at=row.last_failure_at,
        locked_until=row.locked_until,
    )


def _store(row: LoginThrottle, counter: Counter, now: datetime) -> None:
    row.window_started_at = counter.window_started_at
    row.failures = counter.failures
    row.level = counter.level
    row.last_failure_at = counter.last_failure_at
    row.locked_until = counter.locked_until
    row.updated_at = now


def admit_attempt(session: Session, scopes: Sequence[Scope], now: datetime) -> float:
    """Count a sign-in attempt in every scope and return 0, or count nothing and return the
    seconds to wait (the longest of the scopes that refuse)."""
    aware("now", now)
    rows = _rows(session, scopes, now)
    admissions = [admit(_counter(row), now, s.policy) for row, s in zip(rows, scopes, strict=True)]
    wait_s = max(a.retry_after_s for a in admissions)
    if wait_s == 0:
        for row, admission in zip(rows, admissions, strict=True):
            _store(row, admission.counter, now)
    session.flush()
    return wait_s


def record_failure(
    session: Session, scopes: Sequence[Scope], now: datetime, *, actor: str, address: str
) -> list[Lock]:
    """The admitted attempt failed: the locks this failure started (each audited)."""
    aware("now", now)
    locks = []
    for row, scope in zip(_rows(session, scopes, now), scopes, strict=True):
        counter, locked = fail(_counter(row), now, scope.policy)
        _store(row, counter, now)
        if locked and counter.locked_until is not None:
            locks.append(Lock(scope, counter.locked_until))
            _audit_lock(session, scope, counter, now, actor=actor, address=address)
    session.flush()
    if locks:
        prune(session, now, max(s.policy.window_s for s in scopes))
    return locks


def _audit_lock(
    session: Session, scope: Scope, counter: Counter, now: datetime, *, actor: str, address: str
) -> None:
    audit.record(
        session,
        actor=actor,
        action="auth.lock",
        entity="login_throttle",
        entity_id=f"{scope.kind}:{scope.key}",
        before=None,
        after={
            "scope": scope.kind,
            "address": address,
            "failures": scope.policy.max_failures,
            "level": counter.level,
            "lock_s": scope.policy.lock_s(counter.level),
            "locked_until": counter.locked_until,
        },
    )


def record_success(session: Session, scopes: Sequence[Scope], now: datetime) -> None:
    """The admitted attempt succeeded: a ``user`` scope starts afresh (its row goes), any
    other takes its count back (an address keeps the failures others made from it)."""
    aware("now", now)
    for row, scope in zip(_rows(session, scopes, now), scopes, strict=True):
        if scope.kind == USER:
            session.delete(row)
        else:
            _store(row, succeed(_counter(row)), now)
    session.flush()


def prune(session: Session, now: datetime, quiet_s: float) -> int:
    """Delete rows quiet for ``quiet_s`` and not locked: they hold nothing a fresh row would
    not (the window and the level start afresh after a quiet window anyway)."""
    cutoff = now - timedelta(seconds=quiet_s)
    result = session.execute(
        delete(LoginThrottle)
        .where(
            LoginThrottle.updated_at <= cutoff,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= cutoff),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def locked_scopes(session: Session, now: datetime) -> list[tuple[str, str, datetime]]:
    """Scopes locked at ``now`` as ``(kind, key, locked_until)``, the latest end first."""
    rows = session.execute(
        select(LoginThrottle.scope, LoginThrottle.key, LoginThrottle.locked_until)
        .where(and_(LoginThrottle.locked_until.is_not(None), LoginThrottle.locked_until > now))
        .order_by(LoginThrottle.locked_until.desc())
    )
    return [(kind, key, until) for kind, key, until in rows if until is not None]


__all__ = [
    "ADDRESS",
    "USER",
    "Lock",
    "Scope",
    "admit_attempt",
    "locked_scopes",
    "prune",
    "record_failure",
    "record_success",
]
