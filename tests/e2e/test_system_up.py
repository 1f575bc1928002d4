"""The system as an operator starts it: the supervisor brings the API up against real services
and takes it down again."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.fixtures.services import port_open, run_infra

pytestmark = pytest.mark.e2e

API_PORT = 18080  # away from a `make run` instance on 8000


def test_supervisor_starts_a_ready_api_and_stops_it(
    kafka_bootstrap: str, migrated_database_url: str, tmp_path: Path
):
    env = {
        **os.environ,
        "KEEPER_STATE": str(tmp_path),
        "KEEPER_API_PORT": str(API_PORT),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": migrated_database_url,
    }
    base = f"http://127.0.0.1:{API_PORT}"
    topics = run_infra(".venv/bin/python", "-m", "stream_agents.topology", env=env)
    assert topics.returncode == 0, topics.stdout + topics.stderr
    up = run_infra("infra/keeper.sh", "up", env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        ready = httpx.get(f"{base}/readyz", timeout=10)
        schema = httpx.get(f"{base}/openapi.json", timeout=10)
    finally:
        down = run_infra("infra/keeper.sh", "down", env=env)

    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert "/readyz" in schema.json()["paths"]
    assert down.returncode == 0, down.stdout + down.stderr
    assert not port_open("127.0.0.1", API_PORT)
    assert (tmp_path / "logs" / "api.log").exists()
