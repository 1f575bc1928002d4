"""What Keeper's metrics cost per order life, measured directly (``python -m
bench.metrics_overhead``): the metric calls one life makes, timed in a loop on this machine,
against the CPU-ms per life of docs/benchmarks.md. A benchmark of the whole pipeline with
metrics on and off (``make bench-quick`` with ``--env KEEPER_METRICS_ENABLED=false``) moves by
more than this on a shared machine; this isolates the metrics' own share.

Per life (create, payer confirms, operator approves): three API requests through the request
middleware (and the request-id context), three desk steps (``entry_before`` and
``observe_step`` on their real outputs), three desk batches, three projector batches, one
callback outcome; plus the census, which costs per table entry every interval, shared by the
lives of that interval.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from domain.orders import Direction
from ingest_api.metrics import RequestMetrics
from schemas import orders as w
from stream_agents import metrics as consumer_metrics
from stream_agents.desk import metrics as desk_metrics
from stream_agents.desk.step import Desk, Overlay
from telemetry import logs
from tests.unit.agents.builders import T0, decide
from tests.unit.agents.test_desk_step import CARDS, DESK, opening

LOOPS = 2000


def desk_life_steps() -> list[tuple[Any, Any, list[Any], set[str]]]:
    """The three commands of one deposit life with their real outputs."""
    table: dict[str, Any] = {}
    order = opening(Direction.DEPOSIT)
    steps = []
    for message, at in (
        (order, T0),
        (w.ConfirmPayment(uid=order.uid, desk=DESK), T0 + 1_000),
        (decide(w.Verdict.APPROVE).model_copy(update={"uid": order.uid}), T0 + 60_000),
    ):
        overlay = Overlay(table)
        before = desk_metrics.entry_before(message, overlay)
        desk = Desk(overlay.child(), CARDS, clock=lambda: T0)
        outputs = desk.run(message, at)
        overlay.merge(desk.table)
        table.update(dict(overlay.writes()))
        steps.append((message, before, outputs, set(desk.touched)))
    return steps


def per_call_us(fn: Any, loops: int = LOOPS) -> float:
    started = time.process_time()
    for _ in range(loops):
        fn()
    return (time.process_time() - started) / loops * 1e6


async def api_request_us(loops: int = LOOPS) -> float:
    """One request through the metrics middleware and the log context, app excluded."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def bare_send(message: Any) -> None:
        return None

    wrapped = RequestMetrics(app)
    scope = {"type": "http", "method": "POST", "path": "/v1/orders"}

    async def timed(handler: Any, with_context: bool) -> float:
        started = time.process_time()
        for _ in range(loops):
            if with_context:
                with logs.bound(request_id=uuid.uuid4().hex):
                    await handler(dict(scope), None, bare_send)
            else:
                await handler(dict(scope), None, bare_send)
        return (time.process_time() - started) / loops * 1e6

    return await timed(wrapped, True) - await timed(app, False)


def census_per_entry_us(entries: int = 20_000) -> float:
    table = {
        f"order/{i}": {"status": "approved", "pool_id": "p", "updated_at_ms": T0}
        for i in range(entries)
    }
    started = time.process_time()
    desk_metrics.census(table.items(), time.time())
    return (time.process_time() - started) / entries * 1e6


def main() -> None:
    steps = desk_life_steps()
    desk_us = sum(
        per_call_us(lambda s=s: desk_metrics.observe_step(*s))
        + per_call_us(lambda s=s: desk_metrics.entry_before(s[0], {}))
        for s in steps
    ) + 3 * per_call_us(lambda: desk_metrics.batch_done(1, 0.001))
    records = [type("R", (), {"topic": "order-events"})()] * 1
    projector_us = 3 * per_call_us(
        lambda: consumer_metrics.batch_done(
            "projector", consumer_metrics.topic_counts(records, ""), 0.001, 0
        )
    )
    callback_us = per_call_us(
        lambda: consumer_metrics.CALLBACK_DELIVERIES.labels("delivered", "shop").inc()
    )
    api_us = 3 * asyncio.run(api_request_us())
    census_us = census_per_entry_us()
    total = desk_us + projector_us + callback_us + api_us
    print(f"API (3 requests: middleware + request-id context): {api_us:8.1f} us/life")
    print(f"desk (3 steps, 3 batches):                          {desk_us:8.1f} us/life")
    print(f"projector (3 batches):                              {projector_us:8.1f} us/life")
    print(f"callbacks (1 outcome):                              {callback_us:8.1f} us/life")
    print(f"total per life, hot path:                           {total:8.1f} us/life")
    print(f"census: {census_us:.3f} us per table entry per pass (every 15 s by default)")


if __name__ == "__main__":
    main()
