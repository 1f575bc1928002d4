"""Card monitoring in PostgreSQL: turnover windows, alerts, automatic holidays and expiry.

Writes come from the card projector (``stream_agents/card_projector.py``) and must make a
redelivered, reordered or duplicated message a no-op:

* ``card_turnover``: a versioned upsert per (card, window kind, window start); a row only
  moves forward (``card_turnover.version < excluded.version``);
* ``card_alerts``: one row per ``alert_id`` (derived from the alert's facts), ``ON CONFLICT
  DO NOTHING``;
* ``cards.holiday_until``: an automatic holiday only ever extends the holiday in force (an
  audited change by ``system:card-monitor``, like an admin's from the console).

Reads serve the console's card monitoring page and analysts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from db.models import Card, CardAlert, CardTurnover
from db.repositories import cards as card_repo
from domain.cards import CardStatus
from domain.turnover import ExpiryState, expiry_state
from schemas.cards import CardConfigured
from schemas.turnover import AlertKind, CardAlerted, TurnoverUpdated

#: Who the monitor's changes to ``cards`` are attributed to in the audit log.
MONITOR_ACTOR: Final = "system:card-monitor"
#: Namespace of the expiry alerts' ids (the stream's alerts bring their own).
EXPIRY_NAMESPACE: Final = uuid.UUID("5b0c7d1e-2f3a-4b6c-8d9e-0a1b2c3d4e5f")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
TURNOVER: Final = cast(Table, CardTurnover.__table__)
ALERTS: Final = cast(Table, CardAlert.__table__)


class UnknownCardError(ValueError):
    """A message names a card id that cannot be a ``cards.id``."""


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else _EPOCH + timedelta(milliseconds=ms)


def _card_uuid(card_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(card_id)
    except ValueError:
        raise UnknownCardError(f"card {card_id!r} is not a cards.id (UUID)") from None


# --- pure mapping -------------------------------------------------------------------------


def turnover_row(update: TurnoverUpdated) -> dict[str, Any]:
    return {
        "card_id": _card_uuid(update.card_id),
        "window_kind": update.window_kind.value,
        "window_start": _at(update.window_start_ms),
        "window_end": _at(update.window_end_ms),
        "time_zone": update.time_zone,
        "currency": update.currency,
        "in_minor": update.in_minor,
        "in_count": update.in_count,
        "version": update.version,
    }


def alert_row(alert: CardAlerted) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "card_id": _card_uuid(alert.card_id),
        "kind": alert.kind.value,
        "at": _at(alert.at_ms),
        "metric": alert.metric.value if alert.metric else None,
        "threshold_pct": alert.threshold_pct,
        "used": alert.used,
        "ceiling": alert.limit,
        "window_kind": alert.window_kind.value if alert.window_kind else None,
        "window_start": _at(alert.window_start_ms),
        "holiday_reason": alert.holiday_reason.value if alert.holiday_reason else None,
        "holiday_until": _at(alert.holiday_until_ms),
        "expires_on": date.fromisoformat(alert.expires_on) if alert.expires_on else None,
    }


def newest_per_window(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per window, the highest version (one statement cannot touch a row twice)."""
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["card_id"], row["window_kind"], row["window_start"])
        if key not in newest or newest[key]["version"] < row["version"]:
            newest[key] = row
    return list(newest.values())


# --- writes (the caller owns the transaction) ---------------------------------------------


def upsert_turnover(conn: Connection, updates: Sequence[TurnoverUpdated]) -> int:
    """Versioned upsert of every window; the number of rows inserted or moved forward."""
    rows = newest_per_window(turnover_row(update) for update in updates)
    if not rows:
        return 0
    stmt = pg_insert(TURNOVER).values(rows)
    changed = {
        name: stmt.excluded[name]
        for name in ("window_end", "time_zone", "currency", "in_minor", "in_count", "version")
    }
    stmt = stmt.on_conflict_do_update(
        index_elements=["card_id", "window_kind", "window_start"],
        set_={**changed, "updated_at": stmt.excluded.updated_at},
        where=TURNOVER.c.version < stmt.excluded.version,
    )
    return conn.execute(stmt).rowcount or 0


def insert_alerts(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Record alerts once each; the number newly recorded."""
    if not rows:
        return 0
    stmt = pg_insert(ALERTS).values(list(rows)).on_conflict_do_nothing(index_elements=["alert_id"])
    return conn.execute(stmt).rowcount or 0


def extend_holidays(session: Session, alerts: Sequence[CardAlerted]) -> list[CardConfigured]:
    """Put cards on the automatic holidays the alerts announce, when that extends the holiday
    in force; the new configurations (an audited change, the card's version bumped)."""
    changed = []
    for alert in alerts:
        if alert.kind is not AlertKind.HOLIDAY_STARTED or alert.holiday_until_ms is None:
            continue
        until = _at(alert.holiday_until_ms)
        assert until is not None
        row = session.get(Card, _card_uuid(alert.card_id), with_for_update=True)
        if row is None or (row.holiday_until is not None and row.holiday_until >= until):
            continue
        changed.append(card_repo.set_card_holiday(session, row.id, until, actor=MONITOR_ACTOR))
    return changed


# --- expiry -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpirySweep:
    retired: list[CardConfigured]
    expiring_alerts: int
    expired_alerts: int


def expiry_alert_row(
    card_id: uuid.UUID, kind: AlertKind, expires_on: date, at: datetime
) -> dict[str, Any]:
    ident = uuid.uuid5(EXPIRY_NAMESPACE, f"{card_id}:{kind.value}:{expires_on.isoformat()}")
    return {
        "alert_id": ident,
        "card_id": card_id,
        "kind": kind.value,
        "at": at,
        "expires_on": expires_on,
    }


def sweep_expiry(session: Session, now_ms: int, horizon_days: int, tz: Any = UTC) -> ExpirySweep:
    """Flag cards expiring within ``horizon_days`` (one ``expiring_soon`` alert per card and
    expiry date) and retire expired ones (an audited status change plus an ``expired``
    alert). Returns the retired cards' new configurations, to be published."""
    now = _at(now_ms)
    assert now is not None
    soon_rows, expired_rows, retired = [], [], []
    rows = session.scalars(select(Card).where(Card.status != CardStatus.RETIRED.value))
    for row in list(rows):
        state = expiry_state(row.expires_on, now_ms, horizon_days, tz)
        if state is ExpiryState.EXPIRING_SOON:
            soon_rows.append(expiry_alert_row(row.id, AlertKind.EXPIRING_SOON, row.expires_on, now))
        elif state is ExpiryState.EXPIRED:
            expired_rows.append(expiry_alert_row(row.id, AlertKind.EXPIRED, row.expires_on, now))
            retired.append(
                card_repo.set_card_status(
                    session, row.id, CardStatus.RETIRED.value, actor=MONITOR_ACTOR
                )
            )
    conn = session.connection()
    return ExpirySweep(
        retired=retired,
        expiring_alerts=insert_alerts(conn, soon_rows),
        expired_alerts=insert_alerts(conn, expired_rows),
    )


# --- reads --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowTotal:
    card_id: uuid.UUID
    window_kind: str
    window_start: datetime
    in_minor: int
    in_count: int


def current_windows(session: Session, at: datetime) -> list[WindowTotal]:
    """Each card's windows that contain ``at`` (its current hour, day and month)."""
    query = select(CardTurnover).where(
        CardTurnover.window_start <= at, CardTurnover.window_end > at
    )
    return [
        WindowTotal(r.card_id, r.window_kind, r.window_start, r.in_minor, r.in_count)
        for r in session.scalars(query)
    ]


def windows_of(session: Session, card_id: uuid.UUID, kind: str) -> list[WindowTotal]:
    query = (
        select(CardTurnover)
        .where(CardTurnover.card_id == card_id, CardTurnover.window_kind == kind)
        .order_by(CardTurnover.window_start)
    )
    return [
        WindowTotal(r.card_id, r.window_kind, r.window_start, r.in_minor, r.in_count)
        for r in session.scalars(query)
    ]


__all__ = [
    "MONITOR_ACTOR",
    "ExpirySweep",
    "UnknownCardError",
    "WindowTotal",
    "alert_row",
    "current_windows",
    "extend_holidays",
    "insert_alerts",
    "newest_per_window",
    "sweep_expiry",
    "turnover_row",
    "upsert_turnover",
    "windows_of",
]
