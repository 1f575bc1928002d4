"""The checks PostgreSQL can answer alone: invariants 1-4 over the durable record, accepted
disputes and their late credits, and the open dead letters (a record not in the durable
record: never "clean" while one is open)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from stream_agents.reconcile.report import Mismatch

TERMINAL_TYPES = (
    "order.approved",
    "order.rejected",
    "order.failed",
    "order.declined",
    "order.expired",
    "order.cancelled",
)


def _rows(conn: Connection, sql: str, **params: object) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(text(sql), params)]


def balances_match_postings(conn: Connection) -> list[Mismatch]:
    """Invariant 1 (PostgreSQL side): each snapshot equals the sum of its account's postings."""
    sql = """
        WITH sums AS (
            SELECT partner_id, currency,
                   SUM(amount_minor) FILTER (WHERE split_part(account, ':', 3) = 'available')
                       AS available,
                   SUM(amount_minor) FILTER (WHERE split_part(account, ':', 3) = 'held') AS held
            FROM ledger_postings WHERE partner_id IS NOT NULL
            GROUP BY partner_id, currency
        )
        SELECT COALESCE(b.partner_id, s.partner_id), COALESCE(b.currency, s.currency),
               COALESCE(b.available_minor, 0), COALESCE(b.held_minor, 0),
               COALESCE(s.available, 0), COALESCE(s.held, 0)
        FROM balance_snapshots b FULL JOIN sums s USING (partner_id, currency)
        WHERE COALESCE(b.available_minor, 0) <> COALESCE(s.available, 0)
           OR COALESCE(b.held_minor, 0) <> COALESCE(s.held, 0)
           OR COALESCE(s.available, 0) < 0
    """
    return [
        Mismatch(
            "1",
            f"partner {partner} {currency}",
            f"snapshot available={avail} held={held}, postings available={p_avail} held={p_held}",
        )
        for partner, currency, avail, held, p_avail, p_held in _rows(conn, sql)
    ]


def one_terminal_state(conn: Connection) -> list[Mismatch]:
    """Invariant 2: at most one terminal event per order, and the row agrees with the log."""
    many = _rows(
        conn,
        """SELECT order_uid, array_agg(type ORDER BY seq) FROM order_events
           WHERE type = ANY(:types) GROUP BY order_uid HAVING COUNT(*) > 1""",
        types=list(TERMINAL_TYPES),
    )
    drift = _rows(
        conn,
        """SELECT o.uid, o.status, o.version, e.seq, e.type
           FROM orders o
           JOIN LATERAL (SELECT seq, type FROM order_events WHERE order_uid = o.uid
                         ORDER BY seq DESC LIMIT 1) e ON true
           WHERE o.version <> e.seq""",
    )
    return [
        Mismatch("2", f"order {uid}", f"several terminal events: {types}") for uid, types in many
    ] + [
        Mismatch("2", f"order {uid}", f"row at version {ver} ({st}), log at {seq} ({typ})")
        for uid, st, ver, seq, typ in drift
    ]


def postings_fit_outcomes(conn: Connection) -> list[Mismatch]:
    """Invariant 2: each order's postings are the one set its outcome calls for (a closed
    deposit whose dispute was accepted may have its late credit, and nothing else)."""
    sql = """
        WITH k AS (SELECT order_uid, array_agg(DISTINCT kind ORDER BY kind) AS kinds
                   FROM ledger_postings GROUP BY order_uid)
        SELECT o.uid, o.direction, o.status, COALESCE(k.kinds, '{}')
        FROM orders o LEFT JOIN k ON k.order_uid = o.uid
        LEFT JOIN disputes d ON d.order_uid = o.uid AND d.status = 'accepted'
        WHERE NOT (
            (o.direction = 'deposit' AND o.status = 'approved'
                AND COALESCE(k.kinds, '{}') = '{deposit_credit}')
         OR (o.direction = 'deposit' AND o.status <> 'approved' AND k.kinds IS NULL)
         OR (o.direction = 'deposit' AND o.status IN ('expired', 'rejected')
                AND d.order_uid IS NOT NULL AND k.kinds = '{dispute_credit}')
         OR (o.direction = 'withdrawal' AND o.status = 'approved'
                AND k.kinds = '{capture,hold}')
         OR (o.direction = 'withdrawal' AND o.status IN ('rejected','failed','expired','cancelled')
                AND k.kinds = '{hold,release}')
         OR (o.direction = 'withdrawal' AND o.status IN ('new','processing')
                AND k.kinds = '{hold}')
         OR (o.direction = 'withdrawal' AND o.status IN ('pending','declined') AND k.kinds IS NULL)
        )
    """
    return [
        Mismatch("2", f"order {uid}", f"{direction} {status} has postings {list(kinds)}")
        for uid, direction, status, kinds in _rows(conn, sql)
    ]


def fees_match_approved(conn: Connection) -> list[Mismatch]:
    """Invariant 3: fees on the system account equal the fees of approved orders (and of
    closed deposits credited late, their dispute accepted)."""
    sql = """
        WITH booked AS (SELECT currency, SUM(amount_minor) AS fees FROM ledger_postings
                        WHERE account = 'system:fees' GROUP BY currency),
             earned AS (SELECT currency, SUM(fee_minor) AS fees FROM orders o
                        WHERE status = 'approved'
                           OR EXISTS (SELECT 1 FROM disputes d WHERE d.order_uid = o.uid
                                      AND d.status = 'accepted')
                        GROUP BY currency)
        SELECT COALESCE(b.currency, e.currency), COALESCE(b.fees, 0), COALESCE(e.fees, 0)
        FROM booked b FULL JOIN earned e USING (currency)
        WHERE COALESCE(b.fees, 0) <> COALESCE(e.fees, 0)
    """
    return [
        Mismatch("3", f"currency {cur}", f"system fees {booked} <> approved orders' fees {earned}")
        for cur, booked, earned in _rows(conn, sql)
    ]


def no_shared_card_amount(conn: Connection) -> list[Mismatch]:
    """Invariant 4: no two open deposits share a card and an amount."""
    sql = """
        SELECT card_id, amount_minor, array_agg(uid) FROM orders
        WHERE direction = 'deposit' AND status IN ('new', 'processing') AND card_id IS NOT NULL
        GROUP BY card_id, amount_minor HAVING COUNT(*) > 1
    """
    return [
        Mismatch("4", f"card {card}", f"open deposits {list(uids)} share amount {amount}")
        for card, amount, uids in _rows(conn, sql)
    ]


def disputes_settled(conn: Connection) -> list[Mismatch]:
    """An accepted dispute has its late credit, named after it; a late credit has its
    accepted dispute. (A credit whose command was lost: accept the dispute again.)"""
    sql = """
        SELECT d.id, d.order_uid, 'accepted, no credit booked' FROM disputes d
        WHERE d.status = 'accepted' AND NOT EXISTS (
            SELECT 1 FROM ledger_postings p WHERE p.order_uid = d.order_uid
            AND p.kind = 'dispute_credit' AND p.reference = 'dispute:' || d.id::text)
        UNION ALL
        SELECT NULL, p.order_uid, 'credited without an accepted dispute (' || p.reference || ')'
        FROM ledger_postings p
        WHERE p.kind = 'dispute_credit' AND p.partner_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM disputes d WHERE d.order_uid = p.order_uid AND d.status = 'accepted'
            AND p.reference = 'dispute:' || d.id::text)
    """
    return [
        Mismatch("dispute", f"order {uid}", f"dispute {ident}: {problem}" if ident else problem)
        for ident, uid, problem in _rows(conn, sql)
    ]


def open_dead_letters(conn: Connection) -> list[Mismatch]:
    """Each open dead letter: a record some consumer could not write, so the durable record
    lacks it until it is retried after a fix or resolved (``python -m stream_agents.dead_letters``).
    """
    sql = """
        SELECT id, consumer, source_topic, source_partition, source_offset, order_uid, reason
        FROM dead_letters WHERE status = 'open' ORDER BY id
    """
    return [
        Mismatch(
            "dead-letter",
            f"order {uid}" if uid is not None else f"dead letter {ident}",
            f"dead letter {ident} open: {consumer} could not write {topic}[{part}]@{offset}: "
            f"{reason}",
        )
        for ident, consumer, topic, part, offset, uid, reason in _rows(conn, sql)
    ]


def check_database(conn: Connection) -> list[Mismatch]:
    checks = (
        balances_match_postings,
        one_terminal_state,
        postings_fit_outcomes,
        fees_match_approved,
        no_shared_card_amount,
        disputes_settled,
        open_dead_letters,
    )
    return [m for check in checks for m in check(conn)]
