"""Prometheus metrics of the consumer processes: projector, card projector, callbacks and the
reconciler (the desk's are in :mod:`stream_agents.desk.metrics`; docs/operations.md lists
every one with what to do about it).

Counters move where the work is done (a batch committed, a delivery recorded, a pass
finished); gauges that the database knows better than any process (callbacks pending and
dead, how close the busiest card of each pool is to a limit) are read from PostgreSQL when
scraped, by a :class:`DatabaseGauges` collector: one short query per scrape, nothing per
record. Label values are bounded (process, topic, outcome, partner, pool, invariant); order
ids, card ids and card numbers are never labels.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

#: Batch time buckets (seconds): a healthy batch takes milliseconds, an outage minutes.
BATCH_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0)

RECORDS = Counter(
    "keeper_consumer_records",
    "Records a consumer process has written and committed, by process and topic",
    ["process", "topic"],
)
BATCH_SECONDS = Histogram(
    "keeper_consumer_batch_seconds",
    "Time to write one polled batch durably (before its offsets are committed)",
    ["process"],
    buckets=BATCH_BUCKETS_S,
)
DEAD_LETTERED = Counter(
    "keeper_consumer_dead_lettered",
    "Records a consumer process quarantined as dead letters (poison records)",
    ["process"],
)
CALLBACK_DELIVERIES = Counter(
    "keeper_callback_deliveries",
    "Callback delivery attempts by outcome (delivered, retry, dead, skipped) and partner",
    ["outcome", "partner"],
)
RECONCILE_MISMATCHES = Gauge(
    "keeper_reconcile_mismatches",
    "Mismatches the last reconciliation pass found, by invariant (must be 0)",
    ["invariant"],
)
RECONCILE_LAST_PASS = Gauge(
    "keeper_reconcile_last_pass_timestamp_seconds",
    "When the last reconciliation pass finished (unix seconds), whatever it found",
)
QUERY_FAILURES = Counter(
    "keeper_metrics_query_failures",
    "Scrapes at which the query behind a database gauge failed (the gauge was left out)",
    ["metric"],
)
RECONCILE_FAILED_PASSES = Counter(
    "keeper_reconcile_failed_passes", "Reconciliation passes that could not read a source"
)
#: Every invariant a pass checks, so a clean pass reports 0 for each rather than nothing.
INVARIANTS: Final = ("1", "2", "3", "4", "5", "6", "7", "log", "dead-letter")


def batch_done(
    process: str, records_by_topic: Mapping[str, int], elapsed_s: float, dead: int
) -> None:
    """One batch written and committed by ``process``."""
    for topic, count in records_by_topic.items():
        RECORDS.labels(process, topic).inc(count)
    BATCH_SECONDS.labels(process).observe(elapsed_s)
    if dead:
        DEAD_LETTERED.labels(process).inc(dead)


def topic_counts(records: Iterable[Any], prefix: str) -> dict[str, int]:
    """How many of ``records`` (consumer records) came from each topic, by catalogue name
    (the deployment's prefix removed: a label names the topic, not the deployment)."""
    return dict(Tally(record.topic.removeprefix(prefix) for record in records))


def reconciled(invariants: Iterable[str]) -> None:
    """A reconciliation pass found a mismatch of each of ``invariants`` (one per mismatch)."""
    counts = dict.fromkeys(INVARIANTS, 0)
    for invariant in invariants:
        counts[invariant] = counts.get(invariant, 0) + 1
    for invariant, count in counts.items():
        RECONCILE_MISMATCHES.labels(invariant).set(count)
    RECONCILE_LAST_PASS.set(time.time())


#: One gauge read from PostgreSQL: (name, help, label names, query returning labels + value).
Query = tuple[str, str, tuple[str, ...], str]

CALLBACKS_BY_STATUS: Final[Query] = (
    "keeper_callback_deliveries_by_status",
    "Callback deliveries in the durable record by status (pending, delivered, dead, skipped)",
    ("status",),
    "SELECT status, count(*) FROM callback_deliveries GROUP BY status",
)
CALLBACK_OLDEST_PENDING: Final[Query] = (
    "keeper_callback_oldest_pending_age_seconds",
    "How long the oldest pending callback delivery has existed (0: none pending)",
    (),
    "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) FROM callback_deliveries "
    "WHERE status = 'pending'",
)
#: The most used share of each limit kind among the cards of a pool, in today's and this
#: month's windows (``card_turnover``, the card projector's copy of the desk's windows).
CARD_LIMIT_SHARE: Final[Query] = (
    "keeper_card_limit_used_ratio_max",
    "The highest used share of a limit (1 = the whole limit) among a pool's active cards, "
    "by pool and limit (day_amount, day_count, month_amount, month_count)",
    ("pool", "limit"),
    """
    WITH shares AS (
        SELECT c.pool_id,
               COALESCE(d.in_minor, 0)::float / NULLIF(c.daily_limit_minor, 0) AS day_amount,
               COALESCE(d.in_count, 0)::float / NULLIF(c.daily_count_limit, 0) AS day_count,
               COALESCE(m.in_minor, 0)::float / NULLIF(c.monthly_limit_minor, 0) AS month_amount,
               COALESCE(m.in_count, 0)::float / NULLIF(c.monthly_count_limit, 0) AS month_count
        FROM cards c
        LEFT JOIN card_turnover d ON d.card_id = c.id AND d.window_kind = 'day'
             AND d.window_start <= now() AND d.window_end > now()
        LEFT JOIN card_turnover m ON m.card_id = c.id AND m.window_kind = 'month'
             AND m.window_start <= now() AND m.window_end > now()
        WHERE c.status = 'active'
    )
    SELECT pool_id, kind, COALESCE(max(share), 0) FROM shares
    CROSS JOIN LATERAL (VALUES ('day_amount', day_amount), ('day_count', day_count),
                               ('month_amount', month_amount), ('month_count', month_count))
         AS s(kind, share)
    GROUP BY pool_id, kind
    """,
)


class DatabaseGauges(Collector):
    """Gauges read from PostgreSQL at scrape time. A query that fails leaves its gauge out
    and counts in ``keeper_metrics_query_failures``, never failing the whole scrape."""

    def __init__(self, engine_of: Callable[[], Engine | None], queries: Iterable[Query]) -> None:
        self._engine_of = engine_of
        self._queries = tuple(queries)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = self._engine_of()
        if engine is None:
            return
        for name, doc, labels, query in self._queries:
            family = GaugeMetricFamily(name, doc, labels=list(labels))
            try:
                with engine.connect() as conn:
                    rows = conn.execute(text(query)).all()
            except Exception as exc:
                log.warning("metric %s: query failed: %s", name, type(exc).__name__)
                QUERY_FAILURES.labels(name).inc()
                continue
            for row in rows:
                *values, number = row
                family.add_metric([str(v) for v in values], float(number or 0))
            yield family


class EngineSlot:
    """The engine of the running process, for a collector registered once per process."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def __call__(self) -> Engine | None:
        return self.engine


CALLBACKS_ENGINE: Final = EngineSlot()
CARDS_ENGINE: Final = EngineSlot()
REGISTRY.register(DatabaseGauges(CALLBACKS_ENGINE, (CALLBACKS_BY_STATUS, CALLBACK_OLDEST_PENDING)))
REGISTRY.register(DatabaseGauges(CARDS_ENGINE, (CARD_LIMIT_SHARE,)))
