"""How the console shows money, waits and moments (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import pandas as pd

#: ISO 4217 currencies without minor units; every other code is shown with two decimals.
ZERO_DECIMAL: Final = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"})


def money(amount_minor: int, currency: str) -> str:
    code = currency.strip()
    if code in ZERO_DECIMAL:
        return f"{amount_minor:,} {code}"
    sign = "-" if amount_minor < 0 else ""
    units, cents = divmod(abs(int(amount_minor)), 100)
    return f"{sign}{units:,}.{cents:02d} {code}"


def waited(seconds: float) -> str:
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def when(moment: Any) -> str:
    """A moment as ``YYYY-MM-DD HH:MM:SS UTC``; an empty string for none."""
    if moment is None or (not isinstance(moment, datetime) and pd.isna(moment)):
        return ""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(UTC)
    return str(stamp.tz_convert(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def seconds_since(moment: Any, now: datetime | None = None) -> float:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(UTC)
    return float(((now or datetime.now(UTC)) - stamp.to_pydatetime()).total_seconds())
