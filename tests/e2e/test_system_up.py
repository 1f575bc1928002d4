"""The system as an operator starts it, and the README's walk-through on top of it.

The supervisor (``infra/keeper.sh``, what ``make run`` uses) starts the agents, the projector
and the API as separate processes against the real broker and database, ``seed`` creates the
demo data, and a partner then takes a deposit and pays a withdrawal with the signing client's
command line, exactly as README "Try it" tells them to. Everything runs under its own topic
prefix, consumer groups, state folder and ports, so a ``make run`` instance on the same
machine is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.services import port_open, run_infra
from tests.fixtures.stack import metrics_ports

pytestmark = pytest.mark.e2e

API_PORT = 18080  # away from a `make run` instance on 8000
AGENTS_PORT = 16066
CONSOLE_PORT = 18501
PAYER_PAN = "4000000000000002"
DEADLINE_S = 60.0


@pytest.fixture
def running(
    kafka_bootstrap: str, migrated_database_url: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The environment of a system brought up by the supervisor and seeded; down afterwards."""
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "KEEPER_STATE": str(tmp_path),
        "KEEPER_API_PORT": str(API_PORT),
        "KEEPER_AGENTS_WEB_PORT": str(AGENTS_PORT),
        "KEEPER_CONSOLE_PORT": str(CONSOLE_PORT),
        **metrics_ports(),
        "KEEPER_AGENTS_APP_ID": name,
        "KEEPER_TOPIC_PREFIX": f"{name}.",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": migrated_database_url,
    }
    up = run_infra("infra/keeper.sh", "up", env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        seeded = run_infra("infra/keeper.sh", "seed", env=env)
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        yield env
    finally:
        down = run_infra("infra/keeper.sh", "down", env=env)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not port_open("127.0.0.1", API_PORT)
        assert not port_open("127.0.0.1", CONSOLE_PORT)
        for component in ("agents", "projector", "api", "console", "reconciler"):
            assert (tmp_path / "logs" / f"{component}.log").exists()


def credentials(state: Path) -> dict[str, str]:
    lines = (state / "demo-partner.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def keeper(env: dict[str, str], *args: str) -> dict[str, Any]:
    """``python -m ingest_api.client ...`` as the README runs it; its JSON answer."""
    creds = credentials(Path(env["KEEPER_STATE"]))
    done = subprocess.run(
        [
            ".venv/bin/python",
            "-m",
            "ingest_api.client",
            "--base-url",
            f"http://127.0.0.1:{API_PORT}",
            "--key-id",
            creds["KEEPER_KEY_ID"],
            "--secret-env",
            "KEEPER_SECRET",
            *args,
        ],
        env={**env, "KEEPER_SECRET": creds["KEEPER_SECRET"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def operator_decides(uid: str, verdict: str) -> dict[str, Any]:
    base = f"http://127.0.0.1:{API_PORT}"
    login = httpx.post(
        f"{base}/v1/auth/login",
        json={"username": "operator", "password": "operator-demo-password"},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    queue = httpx.get(f"{base}/v1/operator/queue", headers=headers, timeout=10).json()
    assert uid in [item["uid"] for item in queue["items"]]
    decided = httpx.post(
        f"{base}/v1/operator/orders/{uid}/decision",
        json={"verdict": verdict},
        headers=headers,
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    return decided.json()


def eventually_balance(env: dict[str, str], available_minor: int) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        [balance] = keeper(env, "balance")["balances"] or [{"available_minor": None}]
        if balance["available_minor"] == available_minor:
            return balance
        if time.monotonic() > deadline:
            pytest.fail(f"balance never reached {available_minor}: {balance}")
        time.sleep(0.3)


def eventually_in_queue(uid: str) -> None:
    """The projector writes the ``processing`` row a moment after the payer confirms."""
    base = f"http://127.0.0.1:{API_PORT}"
    login = httpx.post(
        f"{base}/v1/auth/login",
        json={"username": "operator", "password": "operator-demo-password"},
        timeout=10,
    ).json()
    headers = {"Authorization": f"Bearer {login['token']}"}
    deadline = time.monotonic() + DEADLINE_S
    while uid not in [
        item["uid"]
        for item in httpx.get(f"{base}/v1/operator/queue", headers=headers, timeout=10).json()[
            "items"
        ]
    ]:
        if time.monotonic() > deadline:
            pytest.fail(f"order {uid} never reached the operator queue")
        time.sleep(0.2)


def test_readme_walkthrough_deposit_then_withdrawal(running: dict[str, str]):
    base = f"http://127.0.0.1:{API_PORT}"
    assert httpx.get(f"{base}/readyz", timeout=10).json()["status"] == "ready"
    console = httpx.get(f"http://127.0.0.1:{CONSOLE_PORT}/_stcore/health", timeout=10)
    assert console.status_code == 200, console.text
    assert "/v1/operator/queue" in httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"]

    deposit = keeper(
        running,
        "create-deposit",
        "--amount-minor",
        "150000",
        "--currency",
        "EUR",
        "--partner-order-id",
        "readme-1",
    )
    assert deposit["status"] == "new", deposit
    assert deposit["fee_minor"] == 3750
    assert deposit["card"]["number"]
    assert deposit["payment_url"] == f"{base}/pay/{deposit['uid']}"

    paid = httpx.post(f"{base}/v1/pay/{deposit['uid']}/confirm", json={}, timeout=10)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "processing"
    eventually_in_queue(deposit["uid"])
    assert operator_decides(deposit["uid"], "approve")["status"] == "approved"
    eventually_balance(running, 150000 - 3750)

    withdrawal = keeper(
        running,
        "create-withdrawal",
        "--amount-minor",
        "50000",
        "--currency",
        "EUR",
        "--partner-order-id",
        "readme-2",
    )
    assert withdrawal["status"] == "new", withdrawal
    hold_minor = 50000 + withdrawal["fee_minor"]
    balance = eventually_balance(running, 150000 - 3750 - hold_minor)
    assert balance["held_minor"] == hold_minor

    card = httpx.post(
        f"{base}/v1/pay/{withdrawal['uid']}/confirm",
        json={"card_number": PAYER_PAN},
        timeout=10,
    )
    assert card.status_code == 200, card.text
    eventually_in_queue(withdrawal["uid"])
    assert operator_decides(withdrawal["uid"], "approve")["status"] == "approved"
    assert keeper(running, "get", withdrawal["uid"])["status"] == "approved"

    reconcile = subprocess.run(
        [".venv/bin/python", "-m", "stream_agents.reconcile"],
        env=running,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr


def admin_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [".venv/bin/python", "-m", "ops_console.admin_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def signed_post(env: dict[str, str], key_id: str, secret: str, path: str, body: str) -> Any:
    """A device's request, signed by ``ingest_api.client sign`` as the README shows."""
    done = subprocess.run(
        [
            *(".venv/bin/python", "-m", "ingest_api.client", "--key-id", key_id),
            *("--secret-env", "DEVICE_SECRET", "sign", "POST", path, "--body", body),
        ],
        env={**env, "DEVICE_SECRET": secret},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    headers = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    headers["content-type"] = "application/json"
    return httpx.post(
        f"http://127.0.0.1:{API_PORT}{path}", content=body.encode(), headers=headers, timeout=10
    )


def test_readme_deposit_confirmed_by_a_bank_notification(running: dict[str, str]):
    """README "A deposit confirmed by the bank's notification": no operator decides."""
    from sqlalchemy import create_engine, text

    admin_cli(running, "set-match-policy", "main", "auto")
    deposit = keeper(
        running, "create-deposit", "--amount-minor", "150000", "--currency", "EUR",
        "--partner-order-id", "readme-3",
    )  # fmt: skip
    assert deposit["status"] == "new", deposit
    engine = create_engine(running["DATABASE_URL"])
    try:
        deadline = time.monotonic() + DEADLINE_S
        card_id = None
        while card_id is None and time.monotonic() < deadline:
            with engine.connect() as conn:
                card_id = conn.execute(
                    text("SELECT card_id::text FROM orders WHERE uid = :u"), {"u": deposit["uid"]}
                ).scalar()
            time.sleep(0.2)
    finally:
        engine.dispose()
    assert card_id is not None
    shown = admin_cli(running, "register-device", "phone-1", "--card", card_id)
    lines = dict(line.strip().split(": ", 1) for line in shown.splitlines() if ": " in line)
    body = json.dumps(
        {
            "notification_id": "sms-1",
            "card_id": card_id,
            "sender": "Alfa-Bank",
            "text": "Card *4444: credit EUR 1500.00 from IVAN PETROV. Balance: EUR 24,210.44",
            "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    answer = signed_post(
        running, lines["key id"], lines["secret"], "/v1/devices/notifications", body
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["parsed"]["amount_minor"] == 150000
    deadline = time.monotonic() + DEADLINE_S
    while keeper(running, "get", deposit["uid"])["status"] != "approved":
        if time.monotonic() > deadline:
            pytest.fail("the deposit was never approved by its notification")
        time.sleep(0.3)
    eventually_balance(running, 150000 - 3750)
