"""The ingest API: FastAPI application factory (``uvicorn ingest_api.app:app``).

``create_app()`` builds the process's services at start-up (Kafka command bus, database
sessions, the signature verifier with keys from memory and group-committed nonces, partner
and card configuration from the config topics, the card cipher: ADR 0006); tests pass their
own :class:`~ingest_api.deps.Services` instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from db.crypto import SecretBox
from db.engine import make_engine, session_factory
from db.repositories import users
from db.repositories.nonces import BatchedNonceStore
from ingest_api import errors, health, metrics
from ingest_api.admission import Admission
from ingest_api.bus import CommandBus
from ingest_api.config_view import CardNumbers, ConfigView
from ingest_api.deps import Services
from ingest_api.key_ring import KeyRing
from ingest_api.limits import BodySizeLimit
from ingest_api.payform.feed import OrderFeed
from ingest_api.rate_limit import PartnerLimiter, Rate
from ingest_api.routes import devices, disputes, operator, partner, pay_page, payer
from ingest_api.security import SecurityHeaders, install_docs
from ingest_api.session_cache import SessionCache
from ingest_api.settings import ApiSettings
from ingest_api.signing import Verifier
from ingest_api.throttle import TooManyAttemptsError, too_many_attempts
from telemetry.exposition import MetricsSettings

log = logging.getLogger(__name__)

DESCRIPTION = """\
Keeper takes deposits from, and pays withdrawals to, the customers of partner services.

* **Partner** endpoints (`/v1/orders`, `/v1/balance`) are signed with HMAC-SHA256; see
  *docs/partner-api.md*.
* **Payer** endpoints (`/v1/pay/...`) back the payment form (`/pay/{uid}`, with live status
  pushed as Server-Sent Events); the order id is the capability.
* **Device** endpoints (`/v1/devices/...`) take the bank notifications a card's phone
  forwards; devices sign like partners, with their own credential; see *docs/devices.md*.
* **Console** endpoints (`/v1/auth/...`, `/v1/operator/...`) take a bearer session token;
  sign-in is throttled per username and per address (`429 too_many_attempts`, `Retry-After`).

Every error is `{"error": {"code", "message", "details"}}` with a stable `code`. Strings are
checked against one rule before anything is stored: control characters, lone surrogates,
text that is not NFC and blank or padded ids are refused with `422 invalid_text` naming the
field and the reason; a JSON object with a repeated key is `422 duplicate_key`.
"""


def build_services(settings: ApiSettings) -> Services:
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    sessions = session_factory(engine)
    box = SecretBox.from_settings()
    return Services(
        settings=settings,
        bus=CommandBus(settings.kafka_bootstrap_servers, topic_prefix=settings.topic_prefix),
        sessions=sessions,
        box=box,
        feed=OrderFeed(settings.kafka_bootstrap_servers, topic_prefix=settings.topic_prefix),
        **memory_services(settings, sessions, box),
    )


def memory_services(
    settings: ApiSettings, sessions: sessionmaker[Session], box: SecretBox
) -> dict[str, Any]:
    """The hot path from memory (ADR 0006), as keyword arguments of :class:`Services`: the
    verifier over the key ring and the group-committed nonce store, the config topics' view,
    card numbers, the partner rate limiter and the session cache."""
    keys = KeyRing(
        sessions, box, refresh_s=settings.key_refresh_s, max_stale_s=settings.key_max_stale_s
    )
    nonces = BatchedNonceStore(sessions)
    return {
        "verifier": Verifier(keys, nonces),
        "keys": keys,
        "nonces": nonces,
        "config": ConfigView(settings.kafka_bootstrap_servers, topic_prefix=settings.topic_prefix),
        "card_numbers": CardNumbers(sessions, box),
        "limiter": partner_limiter(settings),
        "session_cache": SessionCache(settings.session_cache_s),
    }


def partner_limiter(settings: ApiSettings) -> PartnerLimiter:
    """The default rate for every partner; an override's burst is two seconds' worth."""
    overrides = {p: Rate(per_s, max(1.0, 2 * per_s)) for p, per_s in settings.partner_rates.items()}
    return PartnerLimiter(Rate(settings.partner_rate_per_s, settings.partner_burst), overrides)


async def _start_feed(services: Services) -> None:
    """The feed is how the API learns what its commands did (ADR 0003): without it no
    order command could be answered, so a feed that cannot start stops the process."""
    if services.feed is not None and not services.feed.live:
        await services.feed.start()


def create_app(settings: ApiSettings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or (services.settings if services else ApiSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = services or build_services(settings)
        await run_in_threadpool(users.prepare_dummy_hash)  # unknown users answer as fast
        await running.start_memory()  # keys, cards, terms: served from memory (ADR 0006)
        await running.bus.start()
        await _start_feed(running)
        running.start_pipeline_monitor()  # /readyz: are the pipeline's consumers keeping up
        app.state.services = running
        metrics.watch(running)  # open event streams and consumer lag, read when scraped
        try:
            yield
        finally:
            metrics.watch(None)
            await running.stop_pipeline_monitor()
            if running.feed is not None:
                await running.feed.stop()
            await running.bus.stop()
            await running.stop_memory()

    app = FastAPI(
        title="Keeper API",
        version="0.1.0",
        summary="P2P payment processing: partner orders, payer form, operator decisions",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json" if settings.docs_public else None,
        docs_url=None,  # served by install_docs, with a CSP
        redoc_url=None,
        # No 307 to the slash-less path: every answer of the API is its own (an encoded
        # "/" in a uid, "/v1/orders/%2F", would otherwise be redirected, not refused).
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    # Sheds above capacity before the body is read; gives every request its logged id.
    app.add_middleware(
        Admission,
        max_in_flight=settings.max_in_flight,
        retry_after_s=settings.overload_retry_after_s,
    )
    app.add_middleware(SecurityHeaders)  # outermost: refusals of the size limit get them too
    errors.install(app)
    app.add_exception_handler(TooManyAttemptsError, too_many_attempts)
    # Outermost middleware, after the error handlers it counts refusals through: /metrics.
    metrics.install(app, MetricsSettings())
    if settings.docs_public:
        install_docs(app)
    app.include_router(health.router)
    app.include_router(partner.router)
    app.include_router(payer.router)
    app.include_router(pay_page.router)
    app.include_router(operator.router)
    app.include_router(disputes.partner_router)
    app.include_router(disputes.payer_router)
    app.include_router(disputes.console_router)
    app.include_router(devices.router)
    return app


app = create_app()
