"""The reconciliation checker finds each kind of broken invariant, and only broken ones."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from stream_agents.reconcile import check_database, main

pytestmark = pytest.mark.integration

PARTNER = "recon-shop"


@pytest.fixture
def conn(migrated_database_url: str) -> Iterator[Connection]:
    engine = create_engine(migrated_database_url, poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(
            text(
                "INSERT INTO partners (id, name, deposit_fee_bp, withdrawal_fee_bp)"
                " VALUES (:p, 'Recon shop', 200, 100)"
            ),
            {"p": PARTNER},
        )
        connection.execute(text("INSERT INTO card_pools (id, name) VALUES ('main', 'Main')"))
        connection.commit()
        yield connection
    engine.dispose()


def add_card(conn: Connection) -> uuid.UUID:
    card_id = uuid.uuid4()
    conn.execute(
        text(
            """INSERT INTO cards (id, pool_id, pan_encrypted, pan_masked, pan_fingerprint, bank,
                   holder, currency, expires_on, daily_limit_minor, monthly_limit_minor,
                   daily_count_limit, monthly_count_limit, min_order_minor, max_order_minor)
               VALUES (:id, 'main', '\\x00', '220220******1234', :fp, 'Bank', 'HOLDER', 'RUB',
                   '2030-12-31', 100000000, 1000000000, 100, 1000, 100, 10000000)"""
        ),
        {"id": card_id, "fp": card_id.bytes},
    )
    return card_id


def add_order(
    conn: Connection,
    *,
    status: str,
    direction: str = "deposit",
    amount: int = 10_000,
    fee: int = 200,
    card_id: uuid.UUID | None = None,
    events: tuple[str, ...] = (),
) -> uuid.UUID:
    uid = uuid.uuid4()
    version = max(1, len(events))
    conn.execute(
        text(
            """INSERT INTO orders (uid, partner_id, partner_order_id, direction, status,
                   amount_minor, fee_minor, currency, card_id, expires_at, version)
               VALUES (:uid, :p, :poid, :direction, :status, :amount, :fee, 'RUB', :card,
                   now() + interval '15 minutes', :version)"""
        ),
        {
            "uid": uid,
            "p": PARTNER,
            "poid": f"po-{uid}",
            "direction": direction,
            "status": status,
            "amount": amount,
            "fee": fee,
            "card": card_id,
            "version": version,
        },
    )
    for seq, type_ in enumerate(events, start=1):
        conn.execute(
            text(
                """INSERT INTO order_events (event_id, order_uid, seq, type, occurred_at)
                   VALUES (:id, :uid, :seq, :type, now())"""
            ),
            {"id": uuid.uuid4(), "uid": uid, "seq": seq, "type": type_},
        )
    return uid


def post(conn: Connection, uid: uuid.UUID, kind: str, legs: dict[str, int]) -> None:
    for account, amount in legs.items():
        partner = PARTNER if account.startswith("partner:") else None
        conn.execute(
            text(
                """INSERT INTO ledger_postings (posting_id, order_uid, kind, account, partner_id,
                       currency, amount_minor) VALUES (:id, :uid, :kind, :acc, :p, 'RUB', :amt)"""
            ),
            {
                "id": uuid.uuid4(),
                "uid": uid,
                "kind": kind,
                "acc": account,
                "p": partner,
                "amt": amount,
            },
        )


def snapshot(conn: Connection, available: int, held: int = 0) -> None:
    conn.execute(
        text(
            """INSERT INTO balance_snapshots (partner_id, currency, available_minor, held_minor,
                   version) VALUES (:p, 'RUB', :a, :h, 1)
               ON CONFLICT (partner_id, currency) DO UPDATE
               SET available_minor = excluded.available_minor, held_minor = excluded.held_minor"""
        ),
        {"p": PARTNER, "a": available, "h": held},
    )


APPROVED_DEPOSIT = ("order.opened", "order.created", "order.payment_confirmed", "order.approved")


def approved_deposit(conn: Connection, *, fee_posted: int = 200) -> uuid.UUID:
    uid = add_order(conn, status="approved", events=APPROVED_DEPOSIT)
    post(
        conn,
        uid,
        "deposit_credit",
        {
            "external:settlement": -10_000,
            f"partner:{PARTNER}:available": 10_000 - fee_posted,
            "system:fees": fee_posted,
        },
    )
    return uid


def invariants(conn: Connection) -> set[str]:
    conn.commit()
    return {m.invariant for m in check_database(conn)}


def test_consistent_state_has_no_mismatch(conn: Connection):
    approved_deposit(conn)
    snapshot(conn, available=9_800)
    card = add_card(conn)
    add_order(conn, status="new", card_id=card, events=("order.opened", "order.created"))
    add_order(conn, status="new", amount=10_001, card_id=card, events=("order.opened",) * 2)

    assert check_database(conn) == []


def test_snapshot_that_disagrees_with_postings(conn: Connection):
    approved_deposit(conn)
    snapshot(conn, available=9_801)

    assert invariants(conn) == {"1"}


def test_two_terminal_events(conn: Connection):
    add_order(
        conn, status="rejected", events=(*APPROVED_DEPOSIT[:3], "order.rejected", "order.failed")
    )

    assert invariants(conn) == {"2"}


def test_approved_deposit_without_postings(conn: Connection):
    add_order(conn, status="approved", events=APPROVED_DEPOSIT)

    assert "2" in invariants(conn)


def test_fee_posted_differs_from_order_fee(conn: Connection):
    approved_deposit(conn, fee_posted=100)
    snapshot(conn, available=9_900)

    assert invariants(conn) == {"3"}


def test_open_deposits_sharing_card_and_amount(conn: Connection):
    card = add_card(conn)
    for _ in range(2):
        add_order(conn, status="new", card_id=card, events=("order.opened", "order.created"))

    assert invariants(conn) == {"4"}


def test_command_exit_status(conn: Connection, migrated_database_url: str, capsys):
    assert main(["--database-url", migrated_database_url, "--no-kafka", "--settle-s", "0"]) == 0
    approved_deposit(conn)
    conn.commit()

    assert main(["--database-url", migrated_database_url, "--no-kafka", "--settle-s", "0"]) == 1
    assert "[1]" in capsys.readouterr().out
