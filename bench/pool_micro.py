"""Micro-benchmark of the pool agent's request handler against the size of its pool state.

The pool agent keeps one table entry per pool: every open order of every card and every
closed uid of the last two days. Each ``card.request`` copies, scans and (through the
table's changelog) re-serialises that whole entry, so its cost grows with the number of
orders the pool holds. This measures CPU time per request (``time.process_time``, so a
busy machine slows the wall clock but hardly the figure) and the changelog record size.

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
from stream_agents.pool_agent import handle_request

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
    }


def state_with(open_orders: int, done: int, cards: int) -> dict[str, object]:
    slots = {f"card-{i}": {"masked": "m", "open": {}} for i in range(cards)}
    for n in range(open_orders):
        slots[f"card-{n % cards}"]["open"][str(uuid.UUID(int=n))] = [10_000 + n, NOW]
    done_map = {str(uuid.UUID(int=10**9 + n)): [NOW, False] for n in range(done)}
    return {"cards": slots, "done": done_map}


def measure(open_orders: int, done: int, cards: int = 8, requests: int = 200) -> dict[str, float]:
    configs = [config(i) for i in range(cards)]
    state = state_with(open_orders, done, cards)
    reqs = [
        wc.RequestCard(uid=uuid.uuid4(), pool_id="p", amount_minor=5_000_000 + i, currency="RUB")
        for i in range(requests)
    ]
    started = time.process_time()
    for req in reqs:
        new, _ = handle_request(state, req, configs, NOW)
        state = new or state
    per_request = (time.process_time() - started) / requests
    # What the table then does with the new entry: serialise it whole for its changelog.
    from faust.utils import json as faust_json

    started = time.process_time()
    for _ in range(20):
        size = len(faust_json.dumps(state))
    dump_ms = (time.process_time() - started) / 20 * 1000
    return {
        "open": open_orders,
        "done": done,
        "cpu_ms_per_request": round(per_request * 1000, 3),
        "changelog_dump_ms": round(dump_ms, 3),
        "state_json_bytes": size,
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
