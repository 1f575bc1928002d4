"""Read queries of the console pages, as pandas DataFrames (analytics live in ``analytics``).

Plain functions over an ``Engine``; no Streamlit here, so tests call them directly. Card
numbers appear only masked: the queries never select a sealed column.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

import pandas as pd
from sqlalchemy import Engine, text

#: Terminal states an operator decides (the rest end without a person).
DECIDED: Final = ("approved", "rejected", "failed")
QUEUE_LIMIT: Final = 200
ORDERS_LIMIT: Final = 500


def frame(engine: Engine, sql: str, **params: Any) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text(sql), conn, params=params)


def queue(engine: Engine) -> pd.DataFrame:
    """Orders awaiting a decision, oldest wait first; ``waiting_since`` is when the payer
    confirmed (the ``payment_confirmed`` event), else the order's last change;
    ``suggested_by``: the bank notification matched to it under a ``suggest`` pool;
    ``unmatched_credit``: why a credit on its card since it was created matched nothing
    (the reason it was not confirmed automatically)."""
    return frame(
        engine,
        """
        SELECT o.uid::text AS uid, o.partner_id, o.partner_order_id, o.direction,
               o.amount_minor, o.currency, c.pan_masked AS card, o.payer_card_masked,
               o.created_at, COALESCE(e.occurred_at, o.updated_at) AS waiting_since,
               n.id::text AS suggested_by, u.reason AS unmatched_credit
        FROM orders o
        LEFT JOIN cards c ON c.id = o.card_id
        LEFT JOIN LATERAL (
            SELECT occurred_at FROM order_events
            WHERE order_uid = o.uid AND type = 'order.payment_confirmed'
            ORDER BY seq DESC LIMIT 1) e ON true
        LEFT JOIN LATERAL (
            SELECT id FROM notifications
            WHERE matched_uid = o.uid AND outcome = 'suggested'
            ORDER BY stored_at LIMIT 1) n ON true
        LEFT JOIN LATERAL (
            SELECT reason FROM notifications
            WHERE card_id = o.card_id AND outcome = 'unmatched' AND received_at >= o.created_at
            ORDER BY stored_at DESC LIMIT 1) u ON o.direction = 'deposit'
        WHERE o.status = 'processing'
        ORDER BY waiting_since, o.uid
        LIMIT :limit
        """,
        limit=QUEUE_LIMIT,
    )


def order(engine: Engine, uid: str) -> dict[str, Any] | None:
    """One order with its card masked and when it was decided, or ``None``."""
    try:
        key = uuid.UUID(uid)
    except ValueError:
        return None
    found = frame(
        engine,
        """
        SELECT o.uid::text AS uid, o.partner_id, p.name AS partner_name, o.partner_order_id,
               o.direction, o.status, o.amount_minor, o.fee_minor, o.currency,
               c.pan_masked AS card, c.bank AS card_bank, o.payer_card_masked,
               o.decline_reason, o.decided_by, o.decision_reason, o.created_at, o.expires_at,
               o.updated_at,
               (SELECT occurred_at FROM order_events WHERE order_uid = o.uid
                  AND type = 'order.payment_confirmed' ORDER BY seq DESC LIMIT 1)
                 AS confirmed_at,
               (SELECT occurred_at FROM order_events WHERE order_uid = o.uid
                  AND type IN ('order.approved', 'order.rejected', 'order.failed')
                  ORDER BY seq DESC LIMIT 1) AS decided_at
        FROM orders o
        JOIN partners p ON p.id = o.partner_id
        LEFT JOIN cards c ON c.id = o.card_id
        WHERE o.uid = :uid
        """,
        uid=key,
    )
    if found.empty:
        return None
    row: dict[str, Any] = found.iloc[0].to_dict()
    if row["decided_at"] is None or pd.isna(row["decided_at"]):
        row["decided_at"] = row["updated_at"] if row["status"] in DECIDED else None
    return row


def history(engine: Engine, uid: str) -> pd.DataFrame:
    """The order's events in order, with who acted where the event names them."""
    try:
        key = uuid.UUID(uid)
    except ValueError:
        return pd.DataFrame(columns=["seq", "type", "occurred_at", "status", "operator", "reason"])
    return frame(
        engine,
        """
        SELECT seq, type, occurred_at, payload->'order'->>'status' AS status,
               CASE WHEN type IN ('order.approved', 'order.rejected', 'order.failed')
                    THEN payload->'order'->>'decided_by' END AS operator,
               CASE WHEN type IN ('order.approved', 'order.rejected', 'order.failed')
                    THEN payload->'order'->>'decision_reason'
                    WHEN type = 'order.declined'
                    THEN payload->'order'->>'decline_reason' END AS reason
        FROM order_events WHERE order_uid = :uid ORDER BY seq
        """,
        uid=key,
    )


def orders(
    engine: Engine,
    *,
    partner_ids: list[str] | None = None,
    statuses: list[str] | None = None,
    direction: str | None = None,
    card_masked: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    search: str | None = None,
    limit: int = ORDERS_LIMIT,
) -> pd.DataFrame:
    """Orders matching every given filter, newest first. ``card_masked`` matches the
    receiving card or the payer's card by a fragment of their masked number (last four
    digits work); ``search`` matches the uid or the partner's order id."""
    clauses = ["true"]
    params: dict[str, Any] = {"limit": limit}
    if partner_ids:
        clauses.append("o.partner_id = ANY(:partners)")
        params["partners"] = list(partner_ids)
    if statuses:
        clauses.append("o.status = ANY(:statuses)")
        params["statuses"] = list(statuses)
    if direction:
        clauses.append("o.direction = :direction")
        params["direction"] = direction
    if card_masked:
        clauses.append("(c.pan_masked LIKE :card OR o.payer_card_masked LIKE :card)")
        params["card"] = f"%{_like(card_masked.strip())}%"
    if created_from is not None:
        clauses.append("o.created_at >= :created_from")
        params["created_from"] = created_from
    if created_to is not None:
        clauses.append("o.created_at < :created_to")
        params["created_to"] = created_to
    if search:
        clauses.append("(o.uid::text LIKE :search OR o.partner_order_id LIKE :search)")
        params["search"] = f"%{_like(search.strip())}%"
    where = " AND ".join(clauses)
    return frame(
        engine,
        f"""
        SELECT o.created_at, o.uid::text AS uid, o.partner_id, o.partner_order_id, o.direction,
               o.status, o.amount_minor, o.fee_minor, o.currency, c.pan_masked AS card,
               o.payer_card_masked, o.decided_by, o.updated_at
        FROM orders o LEFT JOIN cards c ON c.id = o.card_id
        WHERE {where}
        ORDER BY o.created_at DESC, o.uid DESC
        LIMIT :limit
        """,  # noqa: S608 - only fixed clauses are joined; every value is a bound parameter
        **params,
    )


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def partner_ids(engine: Engine) -> list[str]:
    return list(frame(engine, "SELECT id FROM partners ORDER BY id")["id"])


def balances(engine: Engine) -> pd.DataFrame:
    return frame(
        engine,
        """
        SELECT b.partner_id, p.name AS partner_name, b.currency, b.available_minor,
               b.held_minor, b.available_minor + b.held_minor AS total_minor, b.updated_at
        FROM balance_snapshots b JOIN partners p ON p.id = b.partner_id
        ORDER BY b.partner_id, b.currency
        """,
    )


def system_accounts(engine: Engine) -> pd.DataFrame:
    """Balances of accounts that belong to no partner (fees earned, settlement)."""
    return frame(
        engine,
        """
        SELECT account, currency, SUM(amount_minor) AS balance_minor, COUNT(*) AS postings
        FROM ledger_postings WHERE partner_id IS NULL
        GROUP BY account, currency ORDER BY account, currency
        """,
    )


def postings(
    engine: Engine, *, partner_id: str | None, currency: str | None, limit: int = 500
) -> pd.DataFrame:
    clauses: list[str] = ["true"]
    params: dict[str, Any] = {"limit": limit}
    if partner_id:
        clauses.append("l.partner_id = :partner")
        params["partner"] = partner_id
    if currency:
        clauses.append("l.currency = :currency")
        params["currency"] = currency
    return frame(
        engine,
        f"""
        SELECT l.posted_at, l.order_uid::text AS order_uid, l.kind, l.account, l.partner_id,
               l.currency, l.amount_minor
        FROM ledger_postings l
        WHERE {" AND ".join(clauses)}
        ORDER BY l.posted_at DESC, l.order_uid, l.kind, l.account
        LIMIT :limit
        """,  # noqa: S608 - fixed clauses, bound values
        **params,
    )


def audit_log(
    engine: Engine,
    *,
    actor: str | None = None,
    entity: str | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """The audit log, newest first: configuration changes and operators' decisions (the
    API records each accepted decision), with actor, before and after."""
    params: dict[str, Any] = {"limit": limit, "actor": actor, "entity": entity}
    return frame(
        engine,
        """
        SELECT * FROM (
            SELECT at, actor, action, entity, entity_id, before::text AS before,
                   after::text AS after
            FROM audit_log
        ) entries
        WHERE (CAST(:actor AS text) IS NULL OR actor = :actor)
          AND (CAST(:entity AS text) IS NULL OR entity = :entity)
        ORDER BY at DESC
        LIMIT :limit
        """,
        **params,
    )


def users(engine: Engine) -> pd.DataFrame:
    return frame(
        engine,
        """
        SELECT u.username, u.role, u.partner_id, u.is_active,
               f.confirmed_at IS NOT NULL AS two_factor,
               u.must_change_password, u.password_changed_at, u.created_at,
               (SELECT MAX(last_seen_at) FROM console_sessions s WHERE s.user_id = u.id)
                 AS last_seen_at
        FROM console_users u
        LEFT JOIN console_second_factors f ON f.user_id = u.id
        ORDER BY u.username
        """,
    )


def unmatched_notifications(engine: Engine, limit: int = 200) -> list[str]:
    """The ids of the bank notifications that matched no order and await an operator (attach
    or dismiss), newest first."""
    found = frame(
        engine,
        """
        SELECT id::text AS id FROM notifications WHERE outcome = 'unmatched'
        ORDER BY stored_at DESC LIMIT :limit
        """,
        limit=limit,
    )
    return [str(ident) for ident in found["id"]]
