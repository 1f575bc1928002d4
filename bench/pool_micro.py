"""Micro-benchmark of the pool agent's request handler against how full its pool is.

The pool agent keeps one table entry per card (its open orders and turnover) and one per
order (where it was placed); a ``card.request`` reads the slots of the pool's cards and writes
one placement and one slot (docs/benchmarks.md, change 3). Before that change it kept one
entry per pool with every open and recently closed order, and copied, scanned and
re-serialised all of it on every request. This measures CPU time per request
(``time.process_time``, so a busy machine slows the wall clock but hardly the figure) and the
bytes the request writes to the table's changelog, with ``open`` orders spread over the
pool's cards and ``done`` closed orders in the table.

    .venv/bin/python bench/pool_micro.py [--sizes 0,1000,5000,20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas import cards as wc
from stream_agents.desk.pool import Entry, handle_request

NOW = 1_800_000_000_000


def config(i: int) -> dict[str, object]:
    return {
        "card_id": f"card-{i}",
        "pool_id": "p",
        "pan_masked": f"400000******{i:04d}",
        "currency": "RUB",
        "status": "active",
        "expires_on": "2099-12-31",
        "daily_limit_minor": 10**12,
        "monthly_limit_minor": 10**12,
        "daily_count_limit": 10**6,
        "monthly_count_limit": 10**6,
        "min_order_minor": 100,
        "max_order_minor": 10**9,
        "holiday_until_ms": None,
        "version": 1,
    }


def table_with(
    open_orders: int, done: int, cards: int
) -> tuple[dict[str, Entry], dict[str, Entry]]:
    """Card slots by card id and placements by uid, as the table would hold them."""
    slots: dict[str, Entry] = {f"card-{i}": {"open": {}} for i in range(cards)}
    placements: dict[str, Entry] = {}
    for n in range(open_orders):
        uid, card_id = str(uuid.UUID(int=n)), f"card-{n % cards}"
        slots[card_id]["open"][uid] = [10_000 + n, NOW]
        placements[uid] = {"status": "open", "card_id": card_id, "amount_minor": 10_000 + n}
    for n in range(done):
        placements[str(uuid.UUID(int=10**9 + n))] = {"status": "closed", "card_id": "card-0"}
    return slots, placements


def measure(open_orders: int, done: int, cards: int = 8, requests: int = 200) -> dict[str, float]:
    configs = [config(i) for i in range(cards)]
    slots, placements = table_with(open_orders, done, cards)
    reqs = [
        wc.RequestCard(uid=uuid.uuid4(), pool_id="p", amount_minor=5_000_000 + i, currency="RUB")
        for i in range(requests)
    ]
    written = 0
    started = time.process_time()
    for req in reqs:
        step = handle_request(placements.get(str(req.uid)), slots, req, configs, NOW)
        assert step.placement is not None
        placements[str(req.uid)] = step.placement
        slots.update(step.slots)
    per_request = (time.process_time() - started) / requests
    # What the table then does with the written entries: serialise them for its changelog.
    from faust.utils import json as faust_json

    started = time.process_time()
    for req in reqs:
        uid = str(req.uid)
        written += len(faust_json.dumps(placements[uid]))
        written += len(faust_json.dumps(slots[placements[uid]["card_id"]]))
    dump_ms = (time.process_time() - started) / requests * 1000
    return {
        "open": open_orders,
        "done": done,
        "cpu_ms_per_request": round(per_request * 1000, 3),
        "changelog_dump_ms": round(dump_ms, 3),
        "written_bytes_per_request": written // requests,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,1000,5000,20000")
    args = parser.parse_args()
    for n in (int(x) for x in args.sizes.split(",")):
        print(json.dumps(measure(n, n)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
