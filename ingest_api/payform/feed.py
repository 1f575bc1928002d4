"""Live order status for payment forms and the API's view of orders: one ``order-events``
consumer per API process.

The feed reads every partition of ``order-events`` from the end (no consumer group: each API
process serves its own browsers, so each must see every event) and keeps, for each order it
has seen change, the newest public status. Pages watching an order hold a
:class:`Subscription`; the feed hands each one the newest status it has not yet had.
Subscribers only ever see the latest version (a slow page skips intermediate statuses rather
than queueing them), so a burst of events costs nothing per browser.

Every snapshot also goes to :attr:`OrderFeed.view` (:class:`~ingest_api.order_view.OrderView`),
from which the API judges commands and learns their outcomes (ADR 0003).

``publish`` is the in-memory half and needs no broker: tests feed it directly. The reader
survives fetch errors (:func:`~ingest_api.readers.read_forever`); :attr:`OrderFeed.reader`
tells readiness whether it is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel, Field

from domain.orders import Direction, OrderStatus
from ingest_api.latest import Latest
from ingest_api.order_view import OrderView
from ingest_api.readers import Backoff, ReaderState, read_forever
from schemas.orders import OrderSnapshot
from schemas.registry import SchemaError, decode
from schemas.topics import ORDER_EVENTS
from schemas.topology import topic_partitions

log = logging.getLogger(__name__)

DEFAULT_CACHE_SIZE = 20_000
DEFAULT_MAX_SUBSCRIBERS = 10_000


class PayerUpdate(BaseModel):
    """An order's status as the payment form may see it: nothing about the partner, and the
    payer's own card only masked. ``card_id`` stays on the server (it is never serialised)."""

    uid: uuid.UUID
    version: int
    direction: Direction
    status: OrderStatus
    amount_minor: int
    currency: str
    expires_at_ms: int
    payer_card_masked: str | None = None
    card_id: str | None = Field(default=None, exclude=True)

    @classmethod
    def from_snapshot(cls, snap: OrderSnapshot) -> PayerUpdate:
        return cls(
            uid=snap.uid,
            version=snap.version,
            direction=snap.direction,
            status=snap.status,
            amount_minor=snap.amount_minor,
            currency=snap.currency,
            expires_at_ms=snap.expires_at_ms,
            payer_card_masked=snap.payer_card_masked,
            card_id=snap.card_id,
        )


def newest(*updates: PayerUpdate | None) -> PayerUpdate | None:
    """The update with the highest version (events carry the order's version)."""
    found = [u for u in updates if u is not None]
    return max(found, key=lambda u: u.version) if found else None


#: One page watching one order: the newest PayerUpdate offered since it was opened.
Subscription = Latest[PayerUpdate]


class FeedFullError(Exception):
    """Too many pages are watching at once; the page falls back to polling."""


class OrderFeed:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic_prefix: str = "",
        cache_size: int = DEFAULT_CACHE_SIZE,
        max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS,
        backoff: Backoff | None = None,
        view: OrderView | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        #: The newest snapshot per order, for judging commands (ingest_api.outcomes).
        self.view = view if view is not None else OrderView()
        self._topic = topic_prefix + ORDER_EVENTS.name
        self._cache: OrderedDict[uuid.UUID, PayerUpdate] = OrderedDict()
        self._cache_size = cache_size
        self._max_subscribers = max_subscribers
        # Weak: a stream that dies without closing (its generator never ran) frees itself.
        self._subscribers: dict[uuid.UUID, weakref.WeakSet[Subscription]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._backoff = backoff or Backoff(first_s=0.5)
        #: The reader's state, for readiness (pages poll while it is down).
        self.reader = ReaderState("order-events feed")

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """True while the feed reads the topic (else pages should poll)."""
        return self._reader is not None and not self._reader.done()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions = await topic_partitions(self._bootstrap, self._topic, wait_s=10.0)
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the end offsets now: nothing later is missed
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._reader = asyncio.create_task(
            read_forever(self.reader, self._fetch, self._dispatch, self._backoff),
            name="payform-feed",
        )

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def catch_up(self, timeout_s: float = 1.0) -> None:
        """Return once every event published before the call has been handed on (to the view
        and the pages), or after ``timeout_s``: one request for the end offsets, then a wait.

        Records are dispatched right after the fetch that brought them, before the reader
        awaits again, so a position at or past the end offset means they reached the view.
        """
        consumer = self._consumer
        if consumer is None or not self.live:
            return
        deadline = time.monotonic() + timeout_s
        try:
            ends = await asyncio.wait_for(
                consumer.end_offsets(list(consumer.assignment())), timeout_s
            )
            while time.monotonic() < deadline:
                positions = [await consumer.position(tp) for tp in ends]
                if all(at >= end for at, end in zip(positions, ends.values(), strict=True)):
                    return
                await asyncio.sleep(0.005)
        except Exception:  # a broker away: judge with what the view has
            log.warning("order-events feed: could not catch up", exc_info=True)

    async def _fetch(self) -> Iterable[bytes | None]:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=1000)
        return [record.value for records in batches.values() for record in records]

    def _dispatch(self, raw: bytes | None) -> None:
        if raw is None:
            return
        try:
            _, message = decode(raw)
        except SchemaError as exc:
            log.warning("undecodable order event skipped: %s", exc)
            return
        snapshot = getattr(message, "order", None)
        if isinstance(snapshot, OrderSnapshot):
            self.view.publish(snapshot)
            self.publish(PayerUpdate.from_snapshot(snapshot))

    # --- fan-out --------------------------------------------------------------------------

    def publish(self, update: PayerUpdate) -> None:
        """Remember ``update`` (when newer) and hand it to every page watching its order."""
        known = self._cache.get(update.uid)
        if known is None or update.version > known.version:
            self._cache[update.uid] = update
            self._cache.move_to_end(update.uid)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        for subscription in list(self._subscribers.get(update.uid, ())):
            subscription.offer(update)

    def latest(self, uid: uuid.UUID) -> PayerUpdate | None:
        """The newest status this process has seen for ``uid`` since it started."""
        return self._cache.get(uid)

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    def open(self, uid: uuid.UUID) -> Subscription:
        """Watch ``uid`` (register *before* reading the current state, so nothing slips by)."""
        if self.subscriber_count >= self._max_subscribers:
            raise FeedFullError(f"{self._max_subscribers} pages are already watching")
        if len(self._subscribers) > self._max_subscribers:  # drop orders nobody watches now
            self._subscribers = {k: v for k, v in self._subscribers.items() if v}
        subscription = Subscription(uid)
        self._subscribers.setdefault(uid, weakref.WeakSet()).add(subscription)
        known = self._cache.get(uid)
        if known is not None:
            subscription.offer(known)
        return subscription

    def close(self, subscription: Subscription) -> None:
        subs = self._subscribers.get(subscription.uid)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._subscribers[subscription.uid]

    @contextlib.contextmanager
    def watching(self, uid: uuid.UUID) -> Iterator[Subscription]:
        subscription = self.open(uid)
        try:
            yield subscription
        finally:
            self.close(subscription)
