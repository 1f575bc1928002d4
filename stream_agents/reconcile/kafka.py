"""The checks that need Kafka: the agents' tables and event logs against PostgreSQL.

Invariant 1 compares the partner agent's balances with PostgreSQL's; 2 and 6 compare the
order agent's table, the ``order-events`` log and the ``orders`` rows (nothing acknowledged
may be missing anywhere, and all three must agree on each order's version); 7 looks for a
second order, or a second hold, made from one partner request. The checks are pure
functions of what was read, so unit tests can feed them broken states.

A finished order leaves the desk's table after the retention period (ADR 0008): an order
missing from the table is consistent when PostgreSQL's row and the log's last event both
say it finished (a forgotten order); one missing while unfinished is still a mismatch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, text

from domain.orders import TERMINAL
from stream_agents.reconcile.database import TERMINAL_TYPES
from stream_agents.reconcile.kafka_state import KafkaState
from stream_agents.reconcile.report import Mismatch


@dataclass(frozen=True, slots=True)
class RowOrder:
    status: str
    version: int
    partner_id: str
    partner_order_id: str


Balances = dict[tuple[str, str], tuple[int, int]]


def database_orders(conn: Connection) -> dict[str, RowOrder]:
    rows = conn.execute(
        text("SELECT uid, status, version, partner_id, partner_order_id FROM orders")
    )
    return {str(uid): RowOrder(st, ver, partner, poid) for uid, st, ver, partner, poid in rows}


def database_balances(conn: Connection) -> Balances:
    rows = conn.execute(
        text("SELECT partner_id, currency, available_minor, held_minor FROM balance_snapshots")
    )
    return {(partner, cur.strip()): (avail, held) for partner, cur, avail, held in rows}


def table_balances(state: KafkaState) -> Balances:
    return {
        (partner, currency): (int(b["available_minor"]), int(b["held_minor"]))
        for partner, currencies in state.balances.items()
        for currency, b in currencies.items()
    }


def balances_match_table(state: KafkaState, rows: Balances) -> list[Mismatch]:
    """Invariant 1: the partner agent's balances equal PostgreSQL's, and none is negative."""
    table = table_balances(state)
    found = []
    for partner, currency in sorted(table.keys() | rows.keys()):
        agent, stored = table.get((partner, currency)), rows.get((partner, currency))
        subject = f"partner {partner} {currency}"
        if agent is not None and agent[0] < 0:
            found.append(Mismatch("1", subject, f"agent's available is negative: {agent[0]}"))
        if agent != stored and (agent or stored) != (0, 0):
            found.append(Mismatch("1", subject, f"agent (available, held) {agent}, db {stored}"))
    return found


def orders_match_table(state: KafkaState, rows: dict[str, RowOrder]) -> list[Mismatch]:
    """Invariants 2 and 6: each order is in the agent's table and in PostgreSQL, alike."""
    found = []
    for uid in sorted(state.orders.keys() | rows.keys()):
        entry, row = state.orders.get(uid), rows.get(uid)
        subject = f"order {uid}"
        if row is None:
            assert entry is not None
            found.append(
                Mismatch("6", subject, f"agent has v{entry['version']} {entry['status']}, db none")
            )
        elif entry is None:
            if row.status not in TERMINAL:  # a finished one was forgotten (ADR 0008)
                found.append(
                    Mismatch("6", subject, f"db has v{row.version} {row.status}, agent none")
                )
        elif (entry["version"], entry["status"]) != (row.version, row.status):
            found.append(
                Mismatch(
                    "2",
                    subject,
                    f"agent v{entry['version']} {entry['status']}, db v{row.version} {row.status}",
                )
            )
    return found


def log_matches_table(state: KafkaState) -> list[Mismatch]:
    """Invariants 2 and 6: the event log ends where the table stands; one terminal event."""
    last: dict[str, int] = {}
    finished: set[str] = set()
    terminal: dict[str, set[str]] = defaultdict(set)
    for event in state.events:
        last[event.uid] = max(last.get(event.uid, 0), event.version)
        if event.version == last[event.uid]:
            (finished.add if event.type in TERMINAL_TYPES else finished.discard)(event.uid)
        if event.type in TERMINAL_TYPES:
            terminal[event.uid].add(f"{event.type}:{event.version}")
    found = []
    for uid in sorted(last.keys() | state.orders.keys()):
        entry, logged = state.orders.get(uid), last.get(uid)
        table_version = entry["version"] if entry else None
        if entry is None and uid in finished:  # forgotten by the desk (ADR 0008)
            continue
        if table_version != logged:
            found.append(
                Mismatch("6", f"order {uid}", f"log ends at v{logged}, table at v{table_version}")
            )
    found += [
        Mismatch("2", f"order {uid}", f"several terminal events: {sorted(kinds)}")
        for uid, kinds in sorted(terminal.items())
        if len(kinds) > 1
    ]
    return found


def one_order_per_request(state: KafkaState, rows: dict[str, RowOrder]) -> list[Mismatch]:
    """Invariant 7: one partner request, one order and at most one operation of each kind."""
    requests: dict[tuple[str, str], set[str]] = defaultdict(set)
    for uid, entry in state.orders.items():
        requests[(entry["partner_id"], entry["partner_order_id"])].add(uid)
    for event in state.events:
        requests[(event.partner_id, event.partner_order_id)].add(event.uid)
    for uid, row in rows.items():
        requests[(row.partner_id, row.partner_order_id)].add(uid)
    operations: dict[tuple[str, str], set[str]] = defaultdict(set)
    for posting in state.postings:
        operations[(posting.uid, posting.kind)].add(str(posting.message_id))
    return [
        Mismatch("7", f"partner {partner} request {poid}", f"several orders: {sorted(uids)}")
        for (partner, poid), uids in sorted(requests.items())
        if len(uids) > 1
    ] + [
        Mismatch("7", f"order {uid}", f"{kind} posted {len(ids)} times under different ids")
        for (uid, kind), ids in sorted(operations.items())
        if len(ids) > 1
    ]


def unreadable_records(state: KafkaState) -> list[Mismatch]:
    return [
        Mismatch("log", f"topic {topic}", f"{count} record(s) could not be read")
        for topic, count in sorted(state.unreadable.items())
    ]


def check_kafka(state: KafkaState, conn: Connection) -> list[Mismatch]:
    orders, balances = database_orders(conn), database_balances(conn)
    return (
        balances_match_table(state, balances)
        + orders_match_table(state, orders)
        + log_matches_table(state)
        + one_order_per_request(state, orders)
        + unreadable_records(state)
    )
