"""The agents' Prometheus metrics, served on their Faust web server at ``/metrics``.

Three sources, chosen so that the desk's hot path pays almost nothing:

* **per step**, from what the step already produced (:func:`observe_step`): the order events
  of orders the step really changed (a redelivered command that changes nothing counts
  nowhere), by partner, direction and event (``created``, ``approved``...); the operator's
  reaction time (``processing`` to the decision, from the order's own timestamps); the card
  alerts raised; and per batch its size and time (:func:`batch_done`);
* **a census** of the worker's table every ``KEEPER_METRICS_CENSUS_INTERVAL_S``
  (:func:`census`): orders by state, open orders per pool, the operator queue's depth and
  oldest order, the deadlines the expiry timer watches, entries by kind;
* **Faust's own monitor**, read when scraped: messages received and sent per topic, and the
  size of every table.

Label values are bounded: partner ids, pools, directions, events, states, topics, tables.
Order ids and card numbers never become labels.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast

import faust
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.orders import OrderStatus
from schemas import orders as w
from schemas.envelope import Message
from schemas.topics import CARD_ALERTS, ORDER_EVENTS
from schemas.turnover import CardAlerted
from stream_agents.settings import AgentSettings
from stream_agents.table_keys import DESK_TABLE, ORDER_PREFIX, order_key
from stream_agents.wire import Out
from telemetry.exposition import MetricsSettings

#: Operator reaction buckets (seconds): from moments to the half hour an escalation takes.
REACTION_BUCKETS_S: Final = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
BATCH_BUCKETS_S: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_SIZE_BUCKETS: Final = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
OPEN: Final = frozenset({OrderStatus.PENDING, OrderStatus.NEW, OrderStatus.PROCESSING})

ORDERS = Counter(
    "keeper_orders",
    "Order events of orders the desk changed, by partner, direction and event "
    "(created, declined, payment_confirmed, approved, rejected, failed, expired, cancelled)",
    ["partner", "direction", "event"],
)
REACTION = Histogram(
    "keeper_operator_reaction_seconds",
    "From an order entering processing (the payer confirmed) to the operator's decision, "
    "by verdict (approved, rejected, failed)",
    ["verdict"],
    buckets=REACTION_BUCKETS_S,
)
CARD_ALERTS_RAISED = Counter(
    "keeper_card_alerts",
    "Card alerts the desk raised (limit shares, holidays), by kind and pool",
    ["kind", "pool"],
)
BATCH_SECONDS = Histogram(
    "keeper_desk_batch_seconds",
    "Time the desk takes over one batch of commands (steps, table write, sends)",
    buckets=BATCH_BUCKETS_S,
)
BATCH_SIZE = Histogram(
    "keeper_desk_batch_commands", "Commands in one desk batch", buckets=BATCH_SIZE_BUCKETS
)

_DECISIONS: Final = frozenset({w.OrderApproved.TYPE, w.OrderRejected.TYPE, w.OrderFailed.TYPE})


def observe_step(
    message: Message, before: Mapping[str, Any] | None, outputs: Iterable[Out], touched: set[str]
) -> None:
    """Count what one desk step did. ``before`` is the order's table entry before a decision
    (None for other commands), ``touched`` the orders the step changed."""
    for out in outputs:
        if out.topic == ORDER_EVENTS.name:
            order = out.message.order  # type: ignore[attr-defined]
            if str(order.uid) not in touched:
                continue  # re-published for a repeated command: not news
            event = out.message.TYPE
            ORDERS.labels(order.partner_id, order.direction, event.removeprefix("order.")).inc()
            if event in _DECISIONS and before and before.get("status") == OrderStatus.PROCESSING:
                waited_s = (order.updated_at_ms - int(before["updated_at_ms"])) / 1000
                REACTION.labels(order.status).observe(max(0.0, waited_s))
        elif out.topic == CARD_ALERTS.name and isinstance(out.message, CardAlerted):
            CARD_ALERTS_RAISED.labels(out.message.kind, out.message.pool_id or "-").inc()


def entry_before(message: Message, table: Any) -> Mapping[str, Any] | None:
    """The order's entry before a decision is applied (None for any other command)."""
    if isinstance(message, w.DecideOrder):
        entry: Mapping[str, Any] | None = table.get(order_key(str(message.uid)))
        return entry
    return None


def batch_done(commands: int, elapsed_s: float) -> None:
    BATCH_SECONDS.observe(elapsed_s)
    BATCH_SIZE.observe(commands)


# --- the census ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Census:
    """What one pass over the worker's table found."""

    at_s: float
    orders_by_state: Mapping[str, int] = field(default_factory=dict)
    open_by_pool: Mapping[str, int] = field(default_factory=dict)
    #: ``processing`` orders (the operator queue) and when the oldest of them got there.
    queue_depth: int = 0
    queue_oldest_ms: int | None = None
    #: ``new`` orders: each has a deadline the expiry timer watches.
    deadlines: int = 0
    entries_by_kind: Mapping[str, int] = field(default_factory=dict)


def census(items: Iterable[tuple[str, Any]], at_s: float) -> Census:
    """Count the desk table's ``items`` (key, JSON entry). Pure; reads each entry's status,
    pool and time, never decodes a whole order."""
    states: Tally[str] = Tally()
    pools: Tally[str] = Tally()
    kinds: Tally[str] = Tally()
    oldest: int | None = None
    for key, entry in items:
        kinds[key.split("/", 1)[0]] += 1
        if not key.startswith(ORDER_PREFIX) or not entry:
            continue
        status = str(entry.get("status"))
        states[status] += 1
        if status in OPEN:
            pools[str(entry.get("pool_id") or "-")] += 1
        if status == OrderStatus.PROCESSING:
            since = int(entry.get("updated_at_ms") or 0)
            oldest = since if oldest is None else min(oldest, since)
    return Census(
        at_s=at_s,
        orders_by_state=dict(states),
        open_by_pool=dict(pools),
        queue_depth=states.get(OrderStatus.PROCESSING, 0),
        queue_oldest_ms=oldest,
        deadlines=states.get(OrderStatus.NEW, 0),
        entries_by_kind=dict(kinds),
    )


class AgentsCollector(Collector):
    """The last census and Faust's own counters of the running app, when scraped."""

    def __init__(self) -> None:
        self.app: faust.App | None = None
        self.prefix = ""
        self.last: Census | None = None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        if self.app is None:
            return
        yield from self._faust(self.app)
        if self.last is not None:
            yield from census_families(self.last)

    def _faust(self, app: faust.App) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        monitor = app.monitor
        received = CounterMetricFamily(
            "keeper_agents_messages_received",
            "Messages the agents' consumer received, by topic (Faust's monitor)",
            labels=["topic"],
        )
        for topic, count in sorted(monitor.messages_received_by_topic.items()):
            received.add_metric([str(topic).removeprefix(self.prefix)], count)
        sent = CounterMetricFamily(
            "keeper_agents_messages_sent",
            "Messages the agents produced, by topic (Faust's monitor)",
            labels=["topic"],
        )
        for topic, count in sorted(monitor.messages_sent_by_topic.items()):
            sent.add_metric([str(topic).removeprefix(self.prefix)], count)
        tables = GaugeMetricFamily(
            "keeper_agents_table_entries",
            "Entries of each table this worker holds (the desk, the global card table)",
            labels=["table"],
        )
        for name, table in sorted(app.tables.items()):
            tables.add_metric([name], len(table))
        yield from (received, sent, tables)


def census_families(found: Census) -> Iterator[GaugeMetricFamily]:
    states = GaugeMetricFamily(
        "keeper_desk_orders", "Orders in this worker's desk table, by state", labels=["state"]
    )
    for state in OrderStatus:
        states.add_metric([state.value], found.orders_by_state.get(state.value, 0))
    pools = GaugeMetricFamily(
        "keeper_desk_open_orders",
        "Open orders (pending, new, processing) per pool",
        labels=["pool"],
    )
    for pool, count in sorted(found.open_by_pool.items()):
        pools.add_metric([pool], count)
    depth = GaugeMetricFamily(
        "keeper_operator_queue_depth", "Orders in processing: the operator queue"
    )
    depth.add_metric([], found.queue_depth)
    oldest = GaugeMetricFamily(
        "keeper_operator_queue_oldest_age_seconds",
        "How long the oldest order in the operator queue has waited (0: queue empty)",
    )
    age_s = 0.0 if found.queue_oldest_ms is None else found.at_s - found.queue_oldest_ms / 1000
    oldest.add_metric([], max(0.0, age_s))
    deadlines = GaugeMetricFamily(
        "keeper_desk_deadlines_pending", "New orders whose expiry deadline the timer watches"
    )
    deadlines.add_metric([], found.deadlines)
    kinds = GaugeMetricFamily(
        "keeper_desk_table_entries",
        "Entries of the desk table by kind (order, card, balance, placement, op, turnover)",
        labels=["kind"],
    )
    for kind, count in sorted(found.entries_by_kind.items()):
        kinds.add_metric([kind], count)
    taken = GaugeMetricFamily(
        "keeper_desk_census_timestamp_seconds", "When the desk table was last counted"
    )
    taken.add_metric([], found.at_s)
    yield from (states, pools, depth, oldest, deadlines, kinds, taken)


COLLECTOR: Final = AgentsCollector()
REGISTRY.register(COLLECTOR)


def install(app: faust.App, settings: AgentSettings, metrics: MetricsSettings) -> None:
    """``GET /metrics`` on the Faust web server and the census timer (metrics on only)."""
    if not metrics.enabled:
        return
    table = cast(faust.Table[str, Any], app.tables[DESK_TABLE])
    COLLECTOR.app, COLLECTOR.prefix = app, settings.topic_prefix

    @app.page("/metrics")
    async def serve_metrics(web: faust.web.View, request: faust.web.Request) -> Any:
        headers = {"Content-Type": CONTENT_TYPE_LATEST}  # aiohttp refuses a charset here
        return web.bytes(generate_latest(REGISTRY), headers=headers)

    @app.timer(metrics.census_interval_s, name="metrics-census")  # type: ignore[untyped-decorator]
    async def take_census() -> None:
        COLLECTOR.app, COLLECTOR.prefix = app, settings.topic_prefix
        COLLECTOR.last = census(table.items(), time.time())
