"""The API reports ready only when the real broker and database answer."""

from __future__ import annotations

import httpx
import pytest

from ingest_api.app import create_app
from ingest_api.health import get_settings
from ingest_api.settings import ApiSettings

pytestmark = pytest.mark.integration


def client_for(settings: ApiSettings) -> httpx.AsyncClient:
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_ready_against_real_services(kafka_bootstrap: str, postgres_server_url: str):
    settings = ApiSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=postgres_server_url
    )
    async with client_for(settings) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")

    assert live.status_code == 200
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "kafka": "ok", "database": "ok"}


async def test_not_ready_when_services_are_unreachable():
    settings = ApiSettings(
        kafka_bootstrap_servers="127.0.0.1:1",
        database_url="postgresql+psycopg2://keeper:keeper@127.0.0.1:1/keeper",
        readiness_timeout_s=1.0,
    )
    async with client_for(settings) as client:
        ready = await client.get("/readyz")

    body = ready.json()
    assert ready.status_code == 503
    assert body["status"] == "unavailable"
    assert body["kafka"].startswith("error")
    assert body["database"].startswith("error")


async def test_ready_checks_the_services_the_app_was_built_with(
    kafka_bootstrap: str, postgres_server_url: str, monkeypatch: pytest.MonkeyPatch
):
    """Readiness speaks of the app's own broker and database, whatever the environment says
    (it used to read the environment, and so checked the wrong services in tests)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody:x@127.0.0.1:1/none")
    settings = ApiSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=postgres_server_url
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        ready = await client.get("/readyz")

    assert ready.json() == {"status": "ready", "kafka": "ok", "database": "ok"}
