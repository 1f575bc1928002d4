"""How long after an operator's decision the payer sees the verdict on the payment form.

Each run: a partner creates a deposit; the payer opens the form in headless Chromium, waits
for the live stream to open, presses "I have paid"; an operator approves through the API.
The page stamps the moment it shows the verdict (``data-shown-at``: ``performance.timeOrigin +
performance.now()``, epoch ms); the script compares that with the wall clock around the
decision request. Figures go to ``docs/benchmarks.md``; nothing is asserted.

    .venv/bin/python bench/payform_latency.py --runs 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import REPO_ROOT, chromium_version, kafka_version, machine, replace_section, run

RUNS_ENV = "KEEPER_BENCH_RUNS"
OUT_ENV = "KEEPER_BENCH_OUT"
MARKER = "payform-latency"
TITLE = "Benchmarks"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: list[float]) -> str:
    return (
        f"{percentile(values, 50):.1f} | {percentile(values, 99):.1f} | "
        f"{min(values):.1f} | {max(values):.1f} | {statistics.fmean(values):.1f}"
    )


async def one_run(live_api: Any, context: Any) -> tuple[float, float]:
    """(ms from sending the decision, ms from its answer) to the verdict on screen."""
    s = live_api.system
    body = {
        "direction": "deposit",
        "amount_minor": 10_000 + int(uuid.uuid4().int % 90_000),  # no two share a card+amount
        "currency": "RUB",
        "partner_order_id": f"bench-{uuid.uuid4()}",
    }
    created = await s.partner.post("/v1/orders", json=body)
    assert created.status_code == 201, created.text
    uid = created.json()["uid"]
    page = await context.new_page()
    try:
        await page.goto(live_api.pay_url(uid))
        await page.wait_for_selector("#pay[data-screen='deposit-new']")
        await page.wait_for_selector("#pay[data-stream='open']")
        await page.click("#paid")
        await page.wait_for_selector("#pay[data-screen='waiting']")
        await s.login("olga")
        sent_ms = time.time() * 1000
        decided = await s.decide("olga", uid, "approve")
        answered_ms = time.time() * 1000
        assert decided.status_code == 200, decided.text
        await page.wait_for_selector("#pay[data-screen='approved']", timeout=30_000)
        shown_ms = float(await page.get_attribute("#pay", "data-shown-at") or "nan")
        via = await page.get_attribute("#pay", "data-via")
        assert via == "push", f"verdict arrived by {via}"
    finally:
        await page.close()
    return shown_ms - sent_ms, shown_ms - answered_ms


async def bench_decision_to_screen(live_api: Any, phone: Any) -> None:
    runs = int(os.environ.get(RUNS_ENV, "30"))
    await one_run(live_api, phone)  # warm-up: first connections, caches, JIT
    from_sent: list[float] = []
    from_answer: list[float] = []
    for _ in range(runs):
        sent, answered = await one_run(live_api, phone)
        from_sent.append(sent)
        from_answer.append(answered)
    report = render(runs, from_sent, from_answer)
    print("\n" + report)
    out = Path(os.environ.get(OUT_ENV, str(REPO_ROOT / "docs" / "benchmarks.md")))
    replace_section(out, MARKER, report, TITLE)


def render(runs: int, from_sent: list[float], from_answer: list[float]) -> str:
    from tests.fixtures.browser import CHROMIUM

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""## Payment form: decision to payer's screen

Time from an operator's decision to the verdict on the payer's payment form, pushed live
(Server-Sent Events fed by the API's `order-events` consumer). {runs} deposits, one after
another, after one warm-up run; each: create (partner API) → open the form in headless
Chromium → wait for the live stream → "I have paid" → approve (operator API) → wait for the
approved screen. The page stamps when it shows the verdict (`performance.timeOrigin +
performance.now()`, same machine clock as the script).

| measured from | p50 ms | p99 ms | min ms | max ms | mean ms |
|---|---|---|---|---|---|
| decision request sent | {summary(from_sent)} |
| decision answer received | {summary(from_answer)} |

The decision's answer (order agent → `order-events` → the API's feed and view → operator)
and the event that reaches the page (the same event → the API's feed → SSE → browser) are one
record, so the second row is what the payer waits beyond what the operator
waits; negative means the payer saw the verdict before the operator's request returned.
Percentiles are nearest-rank over the runs (with fewer than 100 runs, p99 is the maximum).

- machine: {machine()}; load average at the end (1/5/15 min): {load()} — other work shared
  the machine, so treat the tail as an upper bound
- software: Kafka {kafka_version()} (single local KRaft node), PostgreSQL (project cluster),
  {chromium_version(CHROMIUM)}, Python {sys.version.split()[0]}
- topology: the test tier's harness (`tests/fixtures/system.py`, `tests/fixtures/browser.py`):
  the Faust agents, the projector, the API (uvicorn on loopback) and the benchmark driver
  share one Python process and event loop (the separate processes of `make run` were not
  measured)
- command: `.venv/bin/python bench/payform_latency.py --runs {runs}`
- recorded: {when}
"""


def load() -> str:
    try:
        return "/".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="measured runs (default 30)")
    parser.add_argument(
        "--out", default=str(REPO_ROOT / "docs" / "benchmarks.md"), help="markdown file to update"
    )
    args = parser.parse_args()
    return run(__file__, {RUNS_ENV: str(args.runs), OUT_ENV: args.out})


if __name__ == "__main__":
    raise SystemExit(main())
