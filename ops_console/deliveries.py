"""Callback deliveries for the console: the log as a table, one delivery's facts, and the
resend with a message for each outcome.

No Streamlit here, so tests call these directly. The log belongs to
``db.repositories.callbacks``: it is read with ``list_deliveries`` / ``get_delivery`` and
resent with ``resend``, which writes the audit row (``callback.resend``, actor, before and
after) in the same transaction. Nothing here reads a signing secret, and a callback URL
is shown with any password in it hidden.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import pandas as pd
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.repositories import callbacks as repo
from db.repositories.errors import InvalidInput, NotFound
from ops_console import fmt
from ops_console.queries import frame
from stream_agents.callbacks.settings import CallbackSettings

LIST_LIMIT: Final = 200
UUID_EXAMPLE: Final = "6912b415-58c8-5bfc-a2d2-0fc70952b048"

#: What each status means, for the detail view.
MEANINGS: Final = {
    "pending": "pending: due at its next attempt",
    "delivered": "delivered: the partner answered 2xx",
    "dead": "dead: parked after its retry window and published to dead-letters",
    "skipped": "skipped: neither the order nor the partner names a callback URL",
}


def parse_uuid(text: str, what: str) -> uuid.UUID | None:
    """``text`` as a UUID, ``None`` when blank; ``ValueError`` (a message to show) else."""
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        return uuid.UUID(cleaned)
    except ValueError:
        raise ValueError(f"{what} must be a UUID such as {UUID_EXAMPLE}.") from None


def redact_url(url: str | None) -> str | None:
    """``url`` with the password of a ``user:password@`` part replaced by ``***``."""
    if not url or "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def status_counts(engine: Engine, partner_id: str | None = None) -> dict[str, int]:
    """How many deliveries are in each status (of one partner, or of all)."""
    counted = frame(
        engine,
        """
        SELECT status, COUNT(*) AS n FROM callback_deliveries
        WHERE CAST(:partner AS text) IS NULL OR partner_id = :partner
        GROUP BY status
        """,
        partner=partner_id,
    )
    return {str(s): int(n) for s, n in zip(counted["status"], counted["n"], strict=True)}


def next_attempt(view: repo.DeliveryView) -> datetime | None:
    """When the sender tries it next; only a pending delivery has a next attempt."""
    return view.next_attempt_at if view.status == "pending" else None


def table(views: list[repo.DeliveryView]) -> pd.DataFrame:
    """The list as shown: state and last answer, never the body."""
    columns = [
        "created_at",
        "partner_id",
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "dead_lettered",
        "order_uid",
        "delivery_id",
    ]
    rows = [
        {
            "created_at": v.created_at,
            "partner_id": v.partner_id,
            "event_type": v.event_type,
            "status": v.status,
            "attempts": v.attempts,
            "last_status_code": v.last_status_code,
            "last_error": v.last_error,
            "next_attempt_at": next_attempt(v),
            "dead_lettered": v.status == "dead",
            "order_uid": str(v.order_uid),
            "delivery_id": str(v.delivery_id),
        }
        for v in views
    ]
    return pd.DataFrame(rows, columns=columns).astype(
        {"last_status_code": "Int64", "attempts": "int64"}
    )


def label(view: repo.DeliveryView) -> str:
    return f"{view.event_type} · {view.partner_id} · {view.status} · {fmt.when(view.created_at)}"


def facts(view: repo.DeliveryView, now: datetime | None = None) -> dict[str, list[str]]:
    """One delivery as a two-column table (``field``, ``value``)."""
    moment = now or datetime.now(UTC)
    due = next_attempt(view)
    if due is None:
        next_text = "— (not pending)"
    else:
        next_text = fmt.when(due) + (" (due now)" if due <= moment else "")
    code = view.last_status_code
    rows = {
        "delivery id": str(view.delivery_id),
        "order uid": str(view.order_uid),
        "partner": view.partner_id,
        "event": view.event_type,
        "status": MEANINGS.get(view.status, view.status),
        "attempts": str(view.attempts),
        "created": fmt.when(view.created_at),
        "last attempt": fmt.when(view.last_attempt_at) or "—",
        "last HTTP status": "—" if code is None else str(code),
        "last error": view.last_error or "—",
        "last URL": redact_url(view.last_url) or "—",
        "next attempt": next_text,
        "retry window ends": fmt.when(view.give_up_at),
        "delivered": fmt.when(view.delivered_at) or "—",
        "parked": fmt.when(view.parked_at) or "—",
        "dead-lettered": "yes" if view.status == "dead" else "no",
    }
    return {"field": list(rows), "value": list(rows.values())}


def retry_window_s() -> float:
    """The fresh window a resend gives: the callbacks process's own setting
    (``KEEPER_CALLBACKS_RETRY_WINDOW_S``), so the console resends as the CLI does."""
    try:
        return CallbackSettings().retry_window_s
    except ValidationError:  # a setting the callbacks process itself would refuse to start with
        return repo.DEFAULT_WINDOW_S


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a resend did: ``kind`` is ``success``, ``warning`` or ``error``."""

    kind: str
    message: str
    view: repo.DeliveryView | None = None


def resend(
    sessions: sessionmaker[Session],
    delivery_id: uuid.UUID | str,
    actor: str,
    *,
    window_s: float | None = None,
) -> Outcome:
    """Resend ``delivery_id`` (one transaction with its audit row) and say what happened."""
    window = retry_window_s() if window_s is None else window_s
    try:
        with sessions.begin() as session:
            view = repo.resend(session, delivery_id, actor, window_s=window)
    except NotFound:
        return Outcome("error", f"Unknown delivery {delivery_id}: nothing was resent.")
    except InvalidInput:
        with sessions() as session:
            current = repo.get_delivery(session, delivery_id)
        due = f" (next attempt {fmt.when(current.next_attempt_at)})" if current else ""
        return Outcome(
            "warning",
            f"Nothing to resend: delivery {delivery_id} is pending already{due}; "
            "the sender will try it. Nothing changed.",
            current,
        )
    return Outcome(
        "success",
        f"Resent: delivery {view.delivery_id} ({view.event_type} to {view.partner_id}) is "
        f"pending again and due now, attempts reset, retried until {fmt.when(view.give_up_at)}.",
        view,
    )
