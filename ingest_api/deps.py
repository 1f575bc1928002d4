"""What endpoints depend on, as ``Annotated`` aliases: services, the caller, a DB session.

The process builds one :class:`Services` at start-up (``app.state.services``); tests build
their own. Endpoints never reach for globals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from db.crypto import SecretBox
from db.repositories.api_keys import PgKeyLookup
from db.repositories.nonces import BatchedNonceStore
from ingest_api.bus import CommandBus
from ingest_api.config_view import CardNumbers, ConfigView
from ingest_api.key_ring import KeyRing
from ingest_api.order_view import OrderView
from ingest_api.outcomes import Lookup, Outcome, ask
from ingest_api.payform.feed import OrderFeed
from ingest_api.pipeline_health import PipelineHealthSettings, PipelineMonitor
from ingest_api.rate_limit import PartnerLimiter
from ingest_api.readers import ReaderState
from ingest_api.session_cache import SessionCache
from ingest_api.settings import ApiSettings
from ingest_api.signing import AuthenticatedPartner, Verifier
from schemas.translation import OrderCommand

T = TypeVar("T")


@dataclass
class Services:
    settings: ApiSettings
    bus: CommandBus
    verifier: Verifier
    sessions: sessionmaker[Session]
    box: SecretBox
    #: To record a key's last use once a request verifies (a :class:`KeyRing` is started
    #: and stopped with the process: ADR 0006).
    keys: KeyRing | PgKeyLookup | None = None
    #: ``order-events``: live status for payment forms and the view commands are judged
    #: against (None only in tests that send no order commands).
    feed: OrderFeed | None = None
    #: Watches the pipeline's consumer groups for ``/readyz`` (None: not watched).
    pipeline: PipelineMonitor | None = None
    #: The hot path from memory (ADR 0006); each None falls back to a database read.
    config: ConfigView | None = None
    card_numbers: CardNumbers | None = None
    nonces: BatchedNonceStore | None = None
    limiter: PartnerLimiter | None = None
    session_cache: SessionCache | None = None

    async def start_memory(self) -> None:
        """Fill the in-memory hot path before serving: keys, card numbers, configuration."""
        if isinstance(self.keys, KeyRing):
            await self.keys.start()
        if self.card_numbers is not None:
            await self.card_numbers.start()
        if self.config is not None:
            await self.config.start()

    async def stop_memory(self) -> None:
        if self.config is not None:
            await self.config.stop()
        if isinstance(self.keys, KeyRing):
            await self.keys.stop()
        if self.nonces is not None:
            await self.nonces.close()

    def start_pipeline_monitor(self) -> None:
        """Sample the pipeline in the background (``KEEPER_HEALTH_MONITOR=false``: don't)."""
        if self.pipeline is None:
            health = PipelineHealthSettings(
                kafka_bootstrap_servers=self.settings.kafka_bootstrap_servers,
                topic_prefix=self.settings.topic_prefix,
            )
            if not health.monitor:
                return
            self.pipeline = PipelineMonitor(health)
        self.pipeline.start()

    async def stop_pipeline_monitor(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.stop()

    @property
    def view(self) -> OrderView:
        """The orders as ``order-events`` shows them; commands need it to learn outcomes."""
        if self.feed is None:
            raise RuntimeError("no order-events feed: this API cannot send order commands")
        return self.feed.view

    async def ask(
        self, command: OrderCommand, *, timeout_s: float, lookup: Lookup | None = None
    ) -> Outcome:
        """Send an order command and learn its outcome from order-events (ADR 0003)."""
        view = self.view
        assert self.feed is not None
        return await ask(
            view, self.bus, command, timeout_s=timeout_s, lookup=lookup, catch_up=self.feed.catch_up
        )

    def readers(self) -> list[ReaderState]:
        """The process's own background readers, for readiness."""
        readers = [] if self.feed is None else [self.feed.reader]
        return readers + ([] if self.config is None else [self.config.reader])

    async def db(self, fn: Callable[[Session], T], *, commit: bool = False) -> T:
        """Run ``fn`` with a session in the thread pool (psycopg2 blocks); commit if asked."""

        def run() -> T:
            with self.sessions() as session:
                result = fn(session)
                if commit:
                    session.commit()
                return result

        return await run_in_threadpool(run)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_partner(request: Request, services: ServicesDep) -> AuthenticatedPartner:
    """Verify the request's HMAC signature over the raw path, query and body bytes."""
    body = await request.body()
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    signed = await services.verifier.authenticate(
        request.method,
        raw_path.decode("latin-1"),
        request.scope.get("query_string", b"").decode("latin-1"),
        request.headers,
        body,
    )
    if services.limiter is not None:  # after the signature, before the nonce costs a write
        services.limiter.check(signed.partner.partner_id)
    partner = await services.verifier.consume_nonce(signed)
    if services.keys is not None:
        await services.keys.mark_used(partner.key_id)
    return partner


CurrentPartner = Annotated[AuthenticatedPartner, Depends(current_partner)]


def db_session(services: ServicesDep) -> Iterator[Session]:
    with services.sessions() as session:
        yield session
