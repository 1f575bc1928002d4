"""Analyst figures computed from PostgreSQL: turnover, approval and expiry rates, operator
reaction times, fees earned. Plain functions returning DataFrames (no Streamlit).

Turnover counts approved orders at the moment they were approved (``orders.updated_at`` of a
terminal order is its decision time). Reaction time is from the payer's confirmation (the
order entering ``processing``) to the operator's decision, both from ``order_events``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import pandas as pd
from sqlalchemy import Engine

from ops_console.queries import frame

Grain = Literal["hour", "day", "month"]
GRAINS: Final[tuple[Grain, ...]] = ("hour", "day", "month")
Dimension = Literal["card", "pool", "partner"]
DIMENSIONS: Final[tuple[Dimension, ...]] = ("card", "pool", "partner")

_KEY: Final[dict[Dimension, str]] = {
    "card": "c.pan_masked",
    "pool": "c.pool_id",
    "partner": "o.partner_id",
}


def _grain(grain: str) -> str:
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}")
    return grain


def turnover(
    engine: Engine, by: Dimension, grain: Grain, since: datetime, until: datetime
) -> pd.DataFrame:
    """Approved amount and count per period, ``by`` key and currency. Cards and pools count
    deposits (the orders paid to a card); partners count both directions."""
    if by not in _KEY:
        raise ValueError(f"by must be one of {DIMENSIONS}")
    card_only = "AND o.card_id IS NOT NULL" if by != "partner" else ""
    return frame(
        engine,
        f"""
        SELECT date_trunc(:grain, o.updated_at AT TIME ZONE 'UTC') AS period,
               {_KEY[by]} AS {by}, o.currency, o.direction,
               COUNT(*) AS approved_orders, SUM(o.amount_minor) AS turnover_minor
        FROM orders o LEFT JOIN cards c ON c.id = o.card_id
        WHERE o.status = 'approved' AND o.updated_at >= :since AND o.updated_at < :until
              {card_only}
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        """,  # noqa: S608 - the key and filter come from fixed tables above
        grain=_grain(grain),
        since=since,
        until=until,
    )


def outcome_rates(engine: Engine, grain: Grain, since: datetime, until: datetime) -> pd.DataFrame:
    """Per period of creation: orders by outcome, the approval rate (approved of those an
    operator decided) and the expiry rate (expired of those a payer could act on)."""
    counts = frame(
        engine,
        """
        SELECT date_trunc(:grain, created_at AT TIME ZONE 'UTC') AS period,
               COUNT(*) AS orders,
               COUNT(*) FILTER (WHERE status = 'approved') AS approved,
               COUNT(*) FILTER (WHERE status = 'rejected') AS rejected,
               COUNT(*) FILTER (WHERE status = 'failed') AS failed,
               COUNT(*) FILTER (WHERE status = 'expired') AS expired,
               COUNT(*) FILTER (WHERE status = 'declined') AS declined,
               COUNT(*) FILTER (WHERE status = 'cancelled') AS cancelled,
               COUNT(*) FILTER (WHERE status IN ('new', 'processing', 'pending')) AS open
        FROM orders WHERE created_at >= :since AND created_at < :until
        GROUP BY 1 ORDER BY 1
        """,
        grain=_grain(grain),
        since=since,
        until=until,
    )
    decided = counts["approved"] + counts["rejected"] + counts["failed"]
    offered = counts["orders"] - counts["declined"] - counts["open"]
    counts["approval_rate"] = (counts["approved"] / decided.where(decided > 0)).round(4)
    counts["expiry_rate"] = (counts["expired"] / offered.where(offered > 0)).round(4)
    return counts


def reaction_times(engine: Engine, since: datetime, until: datetime) -> pd.DataFrame:
    """Seconds from confirmation to decision: percentiles per operator, and ``(all)``."""
    return frame(
        engine,
        """
        WITH reactions AS (
            SELECT d.payload->'order'->>'decided_by' AS operator,
                   EXTRACT(EPOCH FROM d.occurred_at - c.occurred_at) AS seconds
            FROM order_events d
            JOIN LATERAL (
                SELECT occurred_at FROM order_events
                WHERE order_uid = d.order_uid AND type = 'order.payment_confirmed'
                ORDER BY seq DESC LIMIT 1) c ON true
            WHERE d.type IN ('order.approved', 'order.rejected', 'order.failed')
              AND d.occurred_at >= :since AND d.occurred_at < :until
        )
        SELECT COALESCE(operator, '(all)') AS operator, COUNT(*) AS decisions,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90_s,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds) AS p99_s,
               MAX(seconds) AS max_s
        FROM reactions
        GROUP BY ROLLUP (operator)
        ORDER BY operator IS NULL, operator
        """,
        since=since,
        until=until,
    )


def fees_earned(engine: Engine, grain: Grain, since: datetime, until: datetime) -> pd.DataFrame:
    """Fees booked to ``system:fees`` per period, partner and currency."""
    return frame(
        engine,
        """
        SELECT date_trunc(:grain, l.posted_at AT TIME ZONE 'UTC') AS period, o.partner_id,
               l.currency, SUM(l.amount_minor) AS fees_minor, COUNT(*) AS orders
        FROM ledger_postings l JOIN orders o ON o.uid = l.order_uid
        WHERE l.account = 'system:fees' AND l.posted_at >= :since AND l.posted_at < :until
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
        grain=_grain(grain),
        since=since,
        until=until,
    )
