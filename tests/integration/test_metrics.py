"""Every long-running process serves ``/metrics``, and the counters move by exactly the orders
driven through the system.

The supervisor starts the whole pipeline as ``make run`` does (``tests/fixtures/observed``);
a partner then takes three deposits and one withdrawal through the signed API, the payer
confirms each and an operator decides. Each process's ``/metrics`` is read with
prometheus-client's text parser before and after, and the differences are compared with
what was driven. The same scrapes carry no label value that looks like a card number or an
order id, and the processes' logs are JSON lines without a card number.
"""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest
from prometheus_client.samples import Sample

from ingest_api.client import KeeperAuth
from tests.fixtures.observed import METRICS_PORTS, Observed, eventually, value
from tests.fixtures.pan_scan import card_numbers

pytestmark = pytest.mark.integration

PARTNER = "demo-shop"
PAYER_PAN = "4000000000000002"
UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
#: The decisions taken: (direction, amount, verdict).
DRIVEN = (
    ("deposit", 120_000, "approve"),
    ("deposit", 130_000, "approve"),
    ("deposit", 140_000, "reject"),
    ("withdrawal", 50_000, "approve"),
)


def scrape_all(o: Observed) -> dict[str, list[Sample]]:
    return {process: o.scrape(process) for process in METRICS_PORTS}


def operator_headers(o: Observed) -> dict[str, str]:
    login = httpx.post(
        f"{o.api}/v1/auth/login",
        json={"username": "operator", "password": "operator-demo-password"},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


def drive(o: Observed) -> None:
    key_id, secret = o.credentials()
    partner = httpx.Client(base_url=o.api, auth=KeeperAuth(key_id, secret), timeout=15)
    operator = operator_headers(o)
    with partner:
        for direction, amount, verdict in DRIVEN:
            created = partner.post(
                "/v1/orders",
                json={
                    "partner_order_id": f"m-{uuid.uuid4().hex[:12]}",
                    "direction": direction,
                    "amount_minor": amount,
                    "currency": "EUR",
                },
            )
            assert created.status_code == 201, created.text
            uid = created.json()["uid"]
            body = {"card_number": PAYER_PAN} if direction == "withdrawal" else {}
            paid = httpx.post(f"{o.api}/v1/pay/{uid}/confirm", json=body, timeout=10)
            assert paid.status_code == 200, paid.text
            decided = httpx.post(
                f"{o.api}/v1/operator/orders/{uid}/decision",
                json={"verdict": verdict},
                headers=operator,
                timeout=15,
            )
            assert decided.status_code == 200, decided.text
        forged = httpx.Client(base_url=o.api, auth=KeeperAuth(key_id, b"not-the-secret"))
        with forged:
            assert forged.get("/v1/balance").status_code == 401


def delta(before: list[Sample], after: list[Sample], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_counters_move_by_exactly_the_orders_driven(observed: Observed) -> None:
    o = observed
    before = scrape_all(o)
    drive(o)

    deposits = sum(1 for d, _, _ in DRIVEN if d == "deposit")
    approved = sum(1 for _, _, v in DRIVEN if v == "approve")

    def agents_done() -> list[Sample] | None:
        found = o.scrape("agents")
        done = value(found, "keeper_operator_reaction_seconds_count") - value(
            before["agents"], "keeper_operator_reaction_seconds_count"
        )
        return found if done == len(DRIVEN) else None

    agents = eventually(agents_done, "the desk's decisions in its metrics")
    b = before["agents"]
    for direction, count in (("deposit", deposits), ("withdrawal", len(DRIVEN) - deposits)):
        labels = {"partner": PARTNER, "direction": direction}
        assert delta(b, agents, "keeper_orders_total", event="created", **labels) == count
        assert delta(b, agents, "keeper_orders_total", event="payment_confirmed", **labels) == count
    assert delta(b, agents, "keeper_orders_total", event="approved") == approved
    assert delta(b, agents, "keeper_orders_total", event="rejected") == len(DRIVEN) - approved
    assert delta(b, agents, "keeper_orders_total", event="declined") == 0
    assert delta(b, agents, "keeper_operator_reaction_seconds_count", verdict="approved") == (
        approved
    )
    assert value(agents, "keeper_desk_batch_seconds_count") > 0
    assert delta(b, agents, "keeper_agents_messages_received_total", topic="order-commands") > 0

    def census_settled() -> list[Sample] | None:
        found = o.scrape("agents")
        terminal = value(found, "keeper_desk_orders", state="approved") + value(
            found, "keeper_desk_orders", state="rejected"
        )
        return found if terminal == len(DRIVEN) else None

    census = eventually(census_settled, "the desk's census")
    assert value(census, "keeper_operator_queue_depth") == 0
    assert value(census, "keeper_desk_deadlines_pending") == 0
    assert value(census, "keeper_desk_open_orders") == 0
    assert value(census, "keeper_agents_table_entries", table="desk") > 0

    api = o.scrape("api")
    b = before["api"]
    create = {"method": "POST", "route": "/v1/orders", "status": "201"}
    assert delta(b, api, "keeper_http_requests_total", **create) == len(DRIVEN)
    assert delta(b, api, "keeper_http_request_duration_seconds_count", **create) == len(DRIVEN)
    decision = {"route": "/v1/operator/orders/{uid}/decision", "status": "200"}
    assert delta(b, api, "keeper_http_requests_total", **decision) == len(DRIVEN)
    assert delta(b, api, "keeper_api_signature_failures_total", reason="bad_signature") == 1
    assert delta(b, api, "keeper_api_shed_total") == 0

    # Three events per life (created, payment_confirmed, decided) reach the projector.
    def projected() -> list[Sample] | None:
        found = o.scrape("projector")
        moved = delta(before["projector"], found, "keeper_consumer_records_total",
                      topic="order-events")  # fmt: skip
        return found if moved == 3 * len(DRIVEN) else None

    eventually(projected, "the projector's records")

    def called_back() -> list[Sample] | None:  # the demo partner names no callback URL
        found = o.scrape("callbacks")
        moved = delta(before["callbacks"], found, "keeper_callback_deliveries_total",
                      outcome="skipped", partner=PARTNER)  # fmt: skip
        return found if moved == len(DRIVEN) else None

    callbacks = eventually(called_back, "the callbacks' outcomes")
    assert value(callbacks, "keeper_callback_deliveries_by_status", status="skipped") == len(DRIVEN)
    assert value(callbacks, "keeper_callback_deliveries_total", outcome="dead") == 0

    cards = eventually(
        lambda: [s for s in o.scrape("card_projector") if s.name.startswith("keeper_card_limit")],
        "card limit shares",
    )
    assert max(s.value for s in cards) > 0

    def reconciled() -> list[Sample] | None:
        found = o.scrape("reconciler")
        passed = value(found, "keeper_reconcile_last_pass_timestamp_seconds") > 0
        return found if passed and value(found, "keeper_reconcile_mismatches") == 0 else None

    eventually(reconciled, "a clean reconciliation pass", timeout_s=45)

    lag = eventually(
        lambda: [s for s in o.scrape("api") if s.name == "keeper_consumer_group_lag"],
        "consumer lag from the API",
    )
    assert {s.labels["part"] for s in lag} >= {"agents", "projector", "callbacks"}
    partitions = [s for s in o.scrape("api") if s.name == "keeper_consumer_lag"]
    assert {s.labels["group"] for s in partitions} >= {o.env["KEEPER_AGENTS_APP_ID"]}

    # Bounded labels: no card number, no order id, anywhere in any scrape.
    every = [s for found in scrape_all(o).values() for s in found]
    for sample in every:
        for label_value in sample.labels.values():
            assert not card_numbers(label_value), (sample.name, sample.labels)
            assert not UUID_RE.search(label_value), (sample.name, sample.labels)

    # Structured logs: JSON lines from every process but the Faust worker's own banner,
    # and the payer's card number in none of them.
    for component in ("api", "projector", "callbacks", "card-projector", "reconciler"):
        lines = (o.state / "logs" / f"{component}.log").read_text().splitlines()
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        assert parsed, component
        assert all({"ts", "level", "logger", "msg"} <= set(p) for p in parsed)
    logs = "".join(p.read_text() for p in (o.state / "logs").glob("*.log"))
    assert not card_numbers(logs)
