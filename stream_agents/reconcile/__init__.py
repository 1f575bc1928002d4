"""Reconciliation: check the invariants of DESIGN.md section 5 across PostgreSQL and Kafka.

``python -m stream_agents.reconcile`` (``make reconcile``) prints every mismatch with the
order or partner and the amount involved, and exits non-zero if there is any. It reads only
what the system publishes: PostgreSQL (the durable record), the ``order-events`` and
``ledger-events`` logs, and the order agent's ``orders`` table and the partner agent's
balances (``ledger``) as their changelog topics carry them. Every open dead letter (a record
quarantined by a consumer, see docs/reliability.md) is reported too: until it is retried or
resolved, the durable record lacks it, so a run is never clean while one is open.

The projector trails the agents by a moment, so on a busy system a fresh order can be in
Kafka and not yet in PostgreSQL. A run therefore checks again, for up to ``--settle-s``
seconds, until nothing is found; what it reports has persisted that long.

``--every S`` turns the command into the periodic job: a pass every S seconds, each ending
in one ``reconcile: N mismatch(es)`` log line (WARNING when N > 0, with every mismatch).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from sqlalchemy import Engine

from db.engine import make_engine
from db.settings import DatabaseSettings
from stream_agents import metrics
from stream_agents.reconcile.database import check_database
from stream_agents.reconcile.kafka import check_kafka
from stream_agents.reconcile.kafka_state import KafkaState, read_kafka_state
from stream_agents.reconcile.report import Mismatch, report
from stream_agents.settings import AgentSettings
from telemetry import exposition, logs

log = logging.getLogger("stream_agents.reconcile")


async def reconcile(
    engine: Engine, *, bootstrap: str | None, app_id: str = "", topic_prefix: str = ""
) -> list[Mismatch]:
    """One pass of every check; without ``bootstrap``, PostgreSQL's alone.

    Kafka is read first: whatever the projector writes meanwhile only brings PostgreSQL
    closer to what was read, so a clean pipeline never shows a spurious mismatch.
    """
    state: KafkaState | None = None
    if bootstrap is not None:
        state = await read_kafka_state(bootstrap, app_id, topic_prefix)
    with engine.connect() as conn:
        found = check_database(conn)
        if state is not None:
            found += check_kafka(state, conn)
    return found


async def settled(
    engine: Engine,
    *,
    bootstrap: str | None,
    app_id: str,
    topic_prefix: str,
    settle_s: float,
    pause_s: float = 1.0,
) -> list[Mismatch]:
    """Check until clean or ``settle_s`` has passed; the last pass's mismatches."""
    deadline = time.monotonic() + settle_s
    while True:
        found = await reconcile(
            engine, bootstrap=bootstrap, app_id=app_id, topic_prefix=topic_prefix
        )
        if not found or time.monotonic() + pause_s > deadline:
            return found
        await asyncio.sleep(pause_s)


def main(argv: Sequence[str] | None = None) -> int:
    agents = AgentSettings(web_enabled=False)
    parser = argparse.ArgumentParser(
        prog="python -m stream_agents.reconcile", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--database-url", default=DatabaseSettings().database_url)
    parser.add_argument("--kafka", default=agents.kafka_bootstrap_servers, help="bootstrap")
    parser.add_argument("--app-id", default=agents.app_id, help="the agents' Faust app id")
    parser.add_argument("--topic-prefix", default=agents.topic_prefix)
    parser.add_argument(
        "--no-kafka", action="store_true", help="check PostgreSQL alone (invariants 1-4)"
    )
    parser.add_argument(
        "--settle-s", type=float, default=10.0, help="re-check this long while mismatches remain"
    )
    parser.add_argument(
        "--every", type=float, metavar="S", help="run forever, one pass every S seconds"
    )
    args = parser.parse_args(argv)
    engine = make_engine(args.database_url)

    def one_pass() -> Coroutine[Any, Any, list[Mismatch]]:
        return settled(
            engine,
            bootstrap=None if args.no_kafka else args.kafka,
            app_id=args.app_id,
            topic_prefix=args.topic_prefix,
            settle_s=args.settle_s,
        )

    try:
        if args.every is not None:
            asyncio.run(periodically(one_pass, args.every))
            return 0
        found = asyncio.run(one_pass())
    finally:
        engine.dispose()
    return report(found, sys.stdout)


async def periodically(one_pass: Callable[[], Awaitable[list[Mismatch]]], every_s: float) -> None:
    """The periodic job: a pass every ``every_s``; each pass's mismatches per invariant are
    the gauge ``keeper_reconcile_mismatches`` (served on ``KEEPER_METRICS_RECONCILER_PORT``)."""
    logs.configure(logging.INFO)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    exposition.serve("reconciler")
    log.info("reconciling every %.0f s", every_s)
    while True:
        started = time.monotonic()
        try:
            found = await one_pass()
        except Exception:  # a pass that cannot read a source is itself a finding
            log.exception("reconcile pass failed")
            metrics.RECONCILE_FAILED_PASSES.inc()
        else:
            metrics.reconciled(m.invariant for m in found)
            if found:
                log.warning(
                    "reconcile: %d mismatch(es)\n%s", len(found), "\n".join(map(str, found))
                )
            else:
                log.info("reconcile: 0 mismatch(es)")
        await asyncio.sleep(max(0.0, every_s - (time.monotonic() - started)))


__all__ = [
    "Mismatch",
    "check_database",
    "check_kafka",
    "main",
    "read_kafka_state",
    "reconcile",
    "settled",
]
