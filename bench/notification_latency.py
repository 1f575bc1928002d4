"""Bank notifications: share of deposits confirmed with no person, and notification → approved.

Each run: a partner creates a deposit; the phone of the card it got forwards the bank's credit
(the shipped credit formats in turn, the amount rendered in each bank's own way); the pool's
policy is ``auto``. Measured from just before the phone's request is sent until the order is
``approved`` (a) in the API's view of ``order-events`` (what a partner's read and the payment
form see) and (b) in PostgreSQL (what the console shows). Every ``--mismatch-every``-th payer
sends a wrong amount, whose deposit must not be approved (it waits for an operator), so the
share is measured, not assumed. Figures go to ``docs/benchmarks.md``; nothing is asserted.

    .venv/bin/python bench/notification_latency.py --runs 40
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import REPO_ROOT, kafka_version, machine, replace_section, run
from payform_latency import load, percentile

RUNS_ENV = "KEEPER_BENCH_RUNS"
MISMATCH_ENV = "KEEPER_BENCH_MISMATCH_EVERY"
OUT_ENV = "KEEPER_BENCH_OUT"
MARKER = "notification-latency"
TITLE = "Benchmarks"
FORMATS = ("sber-credit-ru", "tbank-credit-ru", "alfa-credit-en")


async def approved_in_view(s: Any, uid: str, deadline_s: float = 30.0) -> float:
    view, key, until = s.services.view, uuid.UUID(uid), time.monotonic() + deadline_s
    while time.monotonic() < until:
        snapshot = view.latest(key)
        if snapshot is not None and snapshot.status == "approved":
            return time.perf_counter()
        await asyncio.sleep(0.002)
    raise AssertionError(f"order {uid} not approved in the API's view")


async def approved_in_db(s: Any, uid: str, deadline_s: float = 30.0) -> float:
    until = time.monotonic() + deadline_s
    while time.monotonic() < until:
        if s.sql("SELECT 1 FROM orders WHERE uid = :uid AND status = 'approved'", uid=uid):
            return time.perf_counter()
        await asyncio.sleep(0.01)
    raise AssertionError(f"order {uid} not approved in PostgreSQL")


async def one_run(s: Any, phones: dict[str, Any], n: int, mismatch: bool) -> tuple[float, float]:
    amount = 20_000 + 100 * n
    body = {
        "direction": "deposit",
        "amount_minor": amount,
        "currency": "RUB",
        "partner_order_id": f"bench-{uuid.uuid4()}",
    }
    created = await s.partner.post("/v1/orders", json=body)
    assert created.status_code == 201, created.text
    uid = created.json()["uid"]
    card_id = str((await s.row(uid, "new")).card_id)
    if mismatch:
        await s.api.post(f"/v1/pay/{uid}/confirm", json={})
    sent = time.perf_counter()
    await phones[card_id].credit(FORMATS[n % len(FORMATS)], amount + (1 if mismatch else 0))
    if mismatch:
        await s.row(uid, "processing")
        return float("nan"), float("nan")
    view = await approved_in_view(s, uid)
    db = await approved_in_db(s, uid)
    return (view - sent) * 1000, (db - sent) * 1000


async def bench_notification_to_approved(system: Any) -> None:
    from db.repositories import notifications
    from stream_agents.card_projector import CardProjectorSettings, run_card_projector
    from tests.fixtures.device import Phone

    runs = int(os.environ.get(RUNS_ENV, "40"))
    every = int(os.environ.get(MISMATCH_ENV, "0"))
    s = system
    with s.sessions.begin() as session:
        notifications.set_match_policy(session, "main", "auto", actor="bench")
    stop = asyncio.Event()
    settings = CardProjectorSettings(
        kafka_bootstrap_servers=s.kafka_bootstrap,
        database_url=s.database_url,
        topic_prefix=s.topic_prefix,
        max_wait_ms=100,
        expiry_sweep_interval_s=0,
        device_sweep_interval_s=0,
    )
    projector = asyncio.create_task(run_card_projector(settings, stop))
    phones = {card: Phone(s, f"bench-{i}", card) for i, card in enumerate(s.card_ids)}
    try:
        await one_run(s, phones, 0, False)  # warm-up
        to_view, to_db, waiting = [], [], 0
        for n in range(1, runs + 1):
            mismatch = bool(every) and n % every == 0
            view, db = await one_run(s, phones, n, mismatch)
            if mismatch:
                waiting += 1
            else:
                to_view.append(view)
                to_db.append(db)
        [(by_device,)] = s.sql(
            "SELECT COUNT(*) FROM orders WHERE status = 'approved' AND decided_by LIKE 'device:%'"
        )
        [(queued,)] = s.sql("SELECT COUNT(*) FROM orders WHERE status = 'processing'")
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(projector, 30)
        for phone in phones.values():
            await phone.aclose()
    report = render(runs, every, int(by_device) - 1, int(queued), waiting, to_view, to_db)
    print("\n" + report)
    out = Path(os.environ.get(OUT_ENV, str(REPO_ROOT / "docs" / "benchmarks.md")))
    replace_section(out, MARKER, report, TITLE)


def row(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} | "
        f"{min(values):.1f} | {max(values):.1f} |"
    )


def render(
    runs: int,
    every: int,
    by_device: int,
    queued: int,
    waiting: int,
    to_view: list[float],
    to_db: list[float],
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    share = 100 * by_device / runs
    wrong = f"every {every}th payer sent a wrong amount" if every else "every payer paid right"
    return f"""## Bank notifications: confirmed with no person, and notification to approved

{runs} deposits one after another (after one warm-up), pool policy `auto`, one simulated
phone per card forwarding the bank's credit in the shipped formats in turn
({", ".join(f"`{f}`" for f in FORMATS)}); {wrong}.

- confirmed with no person: **{by_device} of {runs} ({share:.0f} %)**; waiting for an
  operator: {queued} (the {waiting} wrong amounts, each matching no order: `no_open_order`)

| from the phone's request to `approved` in | p50 ms | p99 ms | min ms | max ms |
|---|---|---|---|---|
{row("the API's view of `order-events`", to_view)}
{row("PostgreSQL (the console)", to_db)}

The path: API (verify the device, parse on RE2, store, send `notification.match`) → the
card's desk (match, confirm, approve, credit, release the card, one step) → `order-events` →
the API's feed, and → the projector → PostgreSQL. Percentiles are nearest-rank (with fewer
than 100 runs, p99 is the maximum).

- machine: {machine()}; load average at the end (1/5/15 min): {load()}; other work shared
  the machine, so treat the tail as an upper bound
- software: Kafka {kafka_version()} (single local KRaft node), PostgreSQL, Python
  {sys.version.split()[0]}
- topology: the test tier's harness (`tests/fixtures/system.py`): agents, projector, card
  projector, API and driver in one Python process and event loop
- command: `.venv/bin/python bench/notification_latency.py --runs {runs} --mismatch-every {every}`
- recorded: {when}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="measured runs (default 40)")
    parser.add_argument(
        "--mismatch-every", type=int, default=4, help="every n-th payer pays a wrong amount"
    )
    parser.add_argument(
        "--out", default=str(REPO_ROOT / "docs" / "benchmarks.md"), help="markdown file to update"
    )
    args = parser.parse_args()
    env = {RUNS_ENV: str(args.runs), MISMATCH_ENV: str(args.mismatch_every), OUT_ENV: args.out}
    return run(__file__, env)


if __name__ == "__main__":
    raise SystemExit(main())
