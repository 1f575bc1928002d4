"""Read queries of the card monitoring page, as pandas DataFrames.

Plain functions over an ``Engine``; no Streamlit here, so tests call them directly. Turnover
comes from ``card_turnover`` (the card projector's copy of the monitor's windows), alerts
from ``card_alerts``; card numbers appear only masked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import pandas as pd
from sqlalchemy import Engine

from ops_console.queries import frame

ALERTS_LIMIT: Final = 500

#: (label, used column, limit column) of each limit the page compares turnover with.
LIMITS: Final = (
    ("day amount", "day_minor", "daily_limit_minor"),
    ("day count", "day_count", "daily_count_limit"),
    ("month amount", "month_minor", "monthly_limit_minor"),
    ("month count", "month_count", "monthly_count_limit"),
)


def card_overview(engine: Engine, at: datetime, pool_id: str | None = None) -> pd.DataFrame:
    """Every card with its limits, status, holiday end, expiry, and the turnover of the day
    and month windows that contain ``at`` (zero when the card took nothing yet)."""
    return frame(
        engine,
        """
        SELECT c.id::text AS card_id, c.pool_id, c.pan_masked, c.bank, c.currency, c.status,
               c.expires_on, c.holiday_until,
               c.daily_limit_minor, c.monthly_limit_minor,
               c.daily_count_limit, c.monthly_count_limit,
               COALESCE(d.in_minor, 0) AS day_minor, COALESCE(d.in_count, 0) AS day_count,
               COALESCE(m.in_minor, 0) AS month_minor, COALESCE(m.in_count, 0) AS month_count,
               COALESCE(h.in_count, 0) AS hour_count,
               d.time_zone
        FROM cards c
        LEFT JOIN card_turnover d ON d.card_id = c.id AND d.window_kind = 'day'
             AND d.window_start <= :at AND d.window_end > :at
        LEFT JOIN card_turnover m ON m.card_id = c.id AND m.window_kind = 'month'
             AND m.window_start <= :at AND m.window_end > :at
        LEFT JOIN card_turnover h ON h.card_id = c.id AND h.window_kind = 'hour'
             AND h.window_start <= :at AND h.window_end > :at
        WHERE (CAST(:pool AS text) IS NULL OR c.pool_id = :pool)
        ORDER BY c.pool_id, c.pan_masked, c.id
        """,
        at=at,
        pool=pool_id,
    )


def with_shares(cards: pd.DataFrame) -> pd.DataFrame:
    """Each limit's used share in percent (``None`` for a zero limit with nothing used)."""
    shares = cards.copy()
    for label, used, limit in LIMITS:
        column = f"{label.replace(' ', '_')}_pct"
        shares[column] = [
            (100.0 * u / lim) if lim else (100.0 if u else 0.0)
            for u, lim in zip(shares[used], shares[limit], strict=True)
        ]
    return shares


def recent_alerts(
    engine: Engine, since: datetime, kinds: list[str] | None = None, limit: int = ALERTS_LIMIT
) -> pd.DataFrame:
    """Alerts since ``since``, newest first, with the card masked."""
    return frame(
        engine,
        """
        SELECT a.at, a.kind, c.pan_masked AS card, c.pool_id, a.metric, a.threshold_pct,
               a.used, a.ceiling, a.window_kind, a.window_start, a.holiday_reason,
               a.holiday_until, a.expires_on, a.card_id::text AS card_id
        FROM card_alerts a JOIN cards c ON c.id = a.card_id
        WHERE a.at >= :since AND (CAST(:kinds AS text[]) IS NULL OR a.kind = ANY(:kinds))
        ORDER BY a.at DESC, a.alert_id
        LIMIT :limit
        """,
        since=since,
        kinds=kinds,
        limit=limit,
    )


def daily_turnover(engine: Engine, card_id: str, since: datetime) -> pd.DataFrame:
    """One card's day windows since ``since``, oldest first."""
    return frame(
        engine,
        """
        SELECT window_start AS day, in_minor, in_count
        FROM card_turnover
        WHERE card_id = CAST(:card AS uuid) AND window_kind = 'day' AND window_start >= :since
        ORDER BY window_start
        """,
        card=card_id,
        since=since,
    )


def pool_ids(engine: Engine) -> list[str]:
    return list(frame(engine, "SELECT id FROM card_pools ORDER BY id")["id"])
