"""The ingest API: FastAPI application factory (``uvicorn ingest_api.app:app``).

``create_app()`` builds the process's services at start-up (Kafka command bus, database
sessions, the signature verifier with PostgreSQL-backed keys and nonces, the card cipher);
tests pass their own :class:`~ingest_api.deps.Services` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from db.crypto import SecretBox
from db.engine import make_engine, session_factory
from db.repositories.api_keys import PgKeyLookup
from db.repositories.nonces import PgNonceStore
from ingest_api import errors, health
from ingest_api.bus import CommandBus
from ingest_api.deps import Services
from ingest_api.limits import BodySizeLimit
from ingest_api.routes import operator, partner, payer
from ingest_api.settings import ApiSettings
from ingest_api.signing import Verifier

DESCRIPTION = """\
Keeper takes deposits from, and pays withdrawals to, the customers of partner services.

* **Partner** endpoints (`/v1/orders`, `/v1/balance`) are signed with HMAC-SHA256; see
  *docs/partner-api.md*.
* **Payer** endpoints (`/v1/pay/...`) back the payment form; the order id is the capability.
* **Console** endpoints (`/v1/auth/...`, `/v1/operator/...`) take a bearer session token.

Every error is `{"error": {"code", "message", "details"}}` with a stable `code`.
"""


def build_services(settings: ApiSettings) -> Services:
    sessions = session_factory(make_engine(settings.database_url))
    box = SecretBox.from_settings()
    keys = PgKeyLookup(sessions, box)
    return Services(
        settings=settings,
        bus=CommandBus(settings.kafka_bootstrap_servers, topic_prefix=settings.topic_prefix),
        verifier=Verifier(keys, PgNonceStore(sessions)),
        sessions=sessions,
        box=box,
        keys=keys,
    )


def create_app(settings: ApiSettings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or (services.settings if services else ApiSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = services or build_services(settings)
        await running.bus.start()
        app.state.services = running
        try:
            yield
        finally:
            await running.bus.stop()

    app = FastAPI(
        title="Keeper API",
        version="0.1.0",
        summary="P2P payment processing: partner orders, payer form, operator decisions",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(partner.router)
    app.include_router(payer.router)
    app.include_router(operator.router)
    return app


app = create_app()
