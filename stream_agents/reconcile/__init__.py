"""Reconciliation: check the invariants of DESIGN.md section 5 across PostgreSQL and Kafka.

``python -m stream_agents.reconcile`` (``make reconcile``) prints every mismatch with the
order or partner and the amount involved, and exits non-zero if there is any. It reads only
what the system publishes: PostgreSQL (the durable record), the ``order-events`` and
``ledger-events`` logs, and the agents' ``orders`` and ``balances`` tables as their changelog
topics carry them.

The projector trails the agents by a moment, so on a busy system a fresh order can be in
Kafka and not yet in PostgreSQL. A run therefore checks again, for up to ``--settle-s``
seconds, until nothing is found; what it reports has persisted that long.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from sqlalchemy import Engine

from db.engine import make_engine
from db.settings import DatabaseSettings
from stream_agents.reconcile.database import check_database
from stream_agents.reconcile.kafka import check_kafka
from stream_agents.reconcile.kafka_state import KafkaState, read_kafka_state
from stream_agents.reconcile.report import Mismatch, report
from stream_agents.settings import AgentSettings


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
    args = parser.parse_args(argv)
    engine = make_engine(args.database_url)
    try:
        found = asyncio.run(
            settled(
                engine,
                bootstrap=None if args.no_kafka else args.kafka,
                app_id=args.app_id,
                topic_prefix=args.topic_prefix,
                settle_s=args.settle_s,
            )
        )
    finally:
        engine.dispose()
    return report(found, sys.stdout)


__all__ = [
    "Mismatch",
    "check_database",
    "check_kafka",
    "main",
    "read_kafka_state",
    "reconcile",
    "settled",
]
