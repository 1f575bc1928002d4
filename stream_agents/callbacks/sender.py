"""Sender: claim due deliveries, POST them signed, record the outcome, park the hopeless.

One round claims up to ``send_batch`` due deliveries (``FOR UPDATE SKIP LOCKED`` plus a
lease, so several processes share the log), commits the claim, and sends them concurrently:

* the durable record has not caught up with the event yet -> postponed, no attempt counted
  (a partner that reads the order back after the callback must see the new status);
* neither the order nor its partner names a callback URL -> ``skipped``;
* ``2xx`` -> ``delivered``; anything else (another status, a timeout, a refused connection,
  no active signing secret) is a failed attempt, due again after the back-off of
  :mod:`.backoff`, or, once the retry window is over, parked: published to ``dead-letters``
  first, then marked ``dead`` (a crash between the two publishes it twice, never zero times).

Logs name delivery ids, partners, status codes and error classes: never bodies or secrets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.crypto import SecretBox
from db.repositories import callbacks as repo
from db.repositories.callbacks import DueDelivery
from stream_agents import metrics
from stream_agents.callbacks.backoff import next_attempt
from stream_agents.callbacks.settings import CallbackSettings
from stream_agents.callbacks.signing import NoSigningSecretError, callback_headers
from stream_agents.projector import describe, sleep_unless_stopped
from telemetry import logs

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Sender:
    def __init__(
        self,
        settings: CallbackSettings,
        sessions: sessionmaker[Session],
        box: SecretBox,
        client: httpx.AsyncClient,
        producer: AIOKafkaProducer,
        *,
        clock: Clock = utc_now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings, self.sessions, self.box = settings, sessions, box
        self.client, self.producer = client, producer
        self.clock, self.rand = clock, rand
        self.policy = settings.retry_policy()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                claimed = await self.round()
            except SQLAlchemyError as exc:
                log.warning("callback sender: database unavailable (%s)", describe(exc))
                claimed = 0
            if not claimed and await sleep_unless_stopped(stop, self.settings.poll_interval_s):
                return

    async def round(self) -> int:
        """Claim and send one batch of due deliveries; how many were claimed."""
        due = await asyncio.to_thread(self._claim)
        if due:
            await asyncio.gather(*(self.deliver(item) for item in due))
        return len(due)

    def _claim(self) -> list[DueDelivery]:
        s = self.settings
        with self.sessions.begin() as session:
            return repo.claim_due(session, self.clock(), s.send_batch, s.lease_s)

    def _write(self, fn: Callable[..., bool], *args: object, **kwargs: object) -> bool:
        with self.sessions.begin() as session:
            return fn(session, *args, **kwargs)

    async def deliver(self, item: DueDelivery) -> None:
        with logs.bound(uid=str(item.order_uid)):
            await self._deliver(item)

    async def _deliver(self, item: DueDelivery) -> None:
        now = self.clock()
        if not item.projected and now < item.give_up_at:
            until = now + timedelta(seconds=self.settings.not_projected_delay_s)
            await asyncio.to_thread(self._write, repo.postpone, item.delivery_id, until)
            return
        if item.projected and item.url is None:
            await asyncio.to_thread(
                self._write, repo.mark_skipped, item.delivery_id, now, "no callback URL"
            )
            log.info(
                "callback %s skipped: %s names no callback URL", item.delivery_id, item.partner_id
            )
            metrics.CALLBACK_DELIVERIES.labels("skipped", item.partner_id).inc()
            return
        status_code, error = await self.attempt(item)
        now = self.clock()
        if error is None and status_code is not None:
            await asyncio.to_thread(
                self._write, repo.mark_delivered, item.delivery_id, now, status_code, item.url
            )
            log.info("callback %s delivered (HTTP %d)", item.delivery_id, status_code)
            metrics.CALLBACK_DELIVERIES.labels("delivered", item.partner_id).inc()
            return
        await self.failed(item, now, status_code, error or "unknown error")

    async def attempt(self, item: DueDelivery) -> tuple[int | None, str | None]:
        """POST once: ``(status code, None)`` on 2xx, else ``(status code or None, error)``."""
        if item.url is None:
            return None, "order not in the durable record"
        try:
            secrets = await asyncio.to_thread(self._secrets, item.partner_id)
            body = item.body.encode("utf-8")
            headers = callback_headers(
                delivery_id=item.delivery_id,
                event_type=item.event_type,
                attempt=item.attempts + 1,
                timestamp=int(time.time()),
                body=body,
                secrets=secrets,
            )
        except NoSigningSecretError:
            return None, "no active callback secret"
        try:
            response = await self.client.post(
                item.url, content=body, headers=headers, timeout=self.settings.http_timeout_s
            )
        except httpx.HTTPError as exc:
            return None, type(exc).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    def _secrets(self, partner_id: str) -> list[bytes]:
        with self.sessions() as session:
            return repo.active_callback_secrets(session, self.box, partner_id)

    async def failed(
        self, item: DueDelivery, now: datetime, status_code: int | None, error: str
    ) -> None:
        failures = item.attempts + 1
        retry_at = next_attempt(self.policy, failures, now, item.give_up_at, self.rand())
        if retry_at is None:
            await self.park(item, failures, status_code, error)
        await asyncio.to_thread(
            self._write,
            repo.mark_failed,
            item.delivery_id,
            now,
            retry_at=retry_at,
            status_code=status_code,
            error=error,
            url=item.url,
        )
        outcome = "dead" if retry_at is None else "retry"
        metrics.CALLBACK_DELIVERIES.labels(outcome, item.partner_id).inc()
        if retry_at is None:
            log.warning(
                "callback %s parked after %d attempts: %s", item.delivery_id, failures, error
            )
        else:
            log.info("callback %s attempt %d failed (%s); retry at %s", item.delivery_id,
                     failures, error, retry_at.isoformat())  # fmt: skip

    async def park(
        self, item: DueDelivery, attempts: int, status_code: int | None, error: str
    ) -> None:
        """Publish the delivery to ``dead-letters`` (and wait for the broker's ack)."""
        letter = {
            "kind": "callback.parked",
            "delivery_id": str(item.delivery_id),
            "order_uid": str(item.order_uid),
            "partner_id": item.partner_id,
            "event": item.event_type,
            "attempts": attempts,
            "last_status_code": status_code,
            "reason": error,
            "url": item.url,
            "body": item.body,
        }
        await self.producer.send_and_wait(
            self.settings.dead_letters_topic,
            json.dumps(letter, separators=(",", ":")).encode(),
            key=b"callbacks",
            headers=[
                ("keeper.error", f"callback not delivered: {error}".encode()),
                ("keeper.source.topic", self.settings.order_events_topic.encode()),
                ("keeper.source.key", str(item.order_uid).encode()),
                ("keeper.delivery_id", str(item.delivery_id).encode()),
                ("keeper.consumer", self.settings.consumer_group.encode()),
            ],
        )
