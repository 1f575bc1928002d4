"""Read what the pipeline holds in Kafka, for reconciliation: the agents' tables as their
changelog topics carry them, and the ``order-events`` and ``ledger-events`` logs.

Everything is read from the beginning up to the end offsets seen at the start, with a
consumer that joins no group and commits nothing, so reading never disturbs the agents. A
changelog is folded to the newest value per key (a tombstone deletes), which is exactly the
table a worker would restore.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from schemas.envelope import Envelope
from schemas.registry import SchemaError, decode_envelope
from schemas.topics import LEDGER_EVENTS, ORDER_EVENTS
from schemas.topology import topic_partitions
from stream_agents.table_keys import BALANCE_PREFIX, DESK_TABLE, ORDER_PREFIX

#: How long one empty poll may take before a partition counts as read to its end.
POLL_MS = 1000


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's name for the changelog of ``table`` in app ``app_id``."""
    return f"{app_id}-{table}-changelog"


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One order event as the log carries it: enough to compare with a table and a row."""

    message_id: uuid.UUID
    type: str
    uid: str
    version: int
    partner_id: str
    partner_order_id: str


@dataclass(frozen=True, slots=True)
class LoggedPosting:
    message_id: uuid.UUID
    uid: str
    kind: str


@dataclass
class KafkaState:
    """The agents' orders and balances and the two event logs."""

    #: The desk's orders: uid → the order's entry.
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The desk's balances: partner id → currency → the balance entry.
    balances: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[LoggedEvent] = field(default_factory=list)
    postings: list[LoggedPosting] = field(default_factory=list)
    #: Records that could not be read (not JSON, unknown schema), by topic.
    unreadable: dict[str, int] = field(default_factory=dict)


async def read_topic(bootstrap: str, topic: str) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` up to the end offsets at the start of the read."""
    partitions = await topic_partitions(bootstrap, topic)
    if not partitions:
        return  # no such topic yet: nothing was ever written to it
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=POLL_MS)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield record
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def read_table(
    bootstrap: str, topic: str, unreadable: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """A Faust table's changelog folded to its newest value per key (JSON keys and values)."""
    table: dict[str, dict[str, Any]] = {}
    async for record in read_topic(bootstrap, topic):
        try:
            key = json.loads(record.key) if record.key is not None else None
            value = json.loads(record.value) if record.value is not None else None
        except ValueError:
            unreadable[topic] = unreadable.get(topic, 0) + 1
            continue
        if not isinstance(key, str) or not (value is None or isinstance(value, dict)):
            unreadable[topic] = unreadable.get(topic, 0) + 1
        elif value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


def entries(table: dict[str, dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    """The entries of one kind (``prefix``), by the rest of their key (a uid, a partner)."""
    return {
        key.removeprefix(prefix): entry for key, entry in table.items() if key.startswith(prefix)
    }


def _envelope(raw: bytes | None) -> Envelope | None:
    if raw is None:
        return None
    try:
        return decode_envelope(raw)
    except SchemaError:
        return None


async def read_order_events(
    bootstrap: str, topic: str, unreadable: dict[str, int]
) -> list[LoggedEvent]:
    events = []
    async for record in read_topic(bootstrap, topic):
        env = _envelope(record.value)
        if env is not None and not env.type.startswith("order."):
            continue  # not an order event (nothing else is expected here, nor harmful)
        order = env.payload.get("order") if env else None
        if env is None or not isinstance(order, dict):
            unreadable[topic] = unreadable.get(topic, 0) + 1
            continue
        events.append(
            LoggedEvent(
                message_id=env.message_id,
                type=env.type,
                uid=str(order["uid"]),
                version=int(order["version"]),
                partner_id=str(order["partner_id"]),
                partner_order_id=str(order["partner_order_id"]),
            )
        )
    return events


async def read_postings(
    bootstrap: str, topic: str, unreadable: dict[str, int]
) -> list[LoggedPosting]:
    postings = []
    async for record in read_topic(bootstrap, topic):
        env = _envelope(record.value)
        if env is None:
            unreadable[topic] = unreadable.get(topic, 0) + 1
            continue
        if env.type == "ledger.posted":
            payload = env.payload
            postings.append(LoggedPosting(env.message_id, str(payload["uid"]), payload["kind"]))
    return postings


async def read_kafka_state(bootstrap: str, app_id: str, topic_prefix: str = "") -> KafkaState:
    state = KafkaState()
    bad = state.unreadable
    desk = await read_table(bootstrap, changelog_topic(app_id, DESK_TABLE), bad)
    state.orders = entries(desk, ORDER_PREFIX)
    state.balances = entries(desk, BALANCE_PREFIX)
    state.events = await read_order_events(bootstrap, topic_prefix + ORDER_EVENTS.name, bad)
    state.postings = await read_postings(bootstrap, topic_prefix + LEDGER_EVENTS.name, bad)
    return state
