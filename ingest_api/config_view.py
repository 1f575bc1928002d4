"""Partner terms and card details in memory, from the compacted config topics (ADR 0006).

``config-partners`` and ``config-cards`` carry the newest configuration per partner and card
(the console and ``ops_console.admin_cli`` publish every change). Each API process reads both
topics from the beginning at start -- it does not serve before it has caught up with what
was published before it started -- and then follows them, so a create needs no database
read for the partner's fees and pool, nor for the card's bank and holder. A message older
than what is held (a lower ``version``) is ignored, so a re-publish cannot roll a
configuration back.

An entity the topics have not (yet) carried is read from PostgreSQL by the caller, as before
(a partner created with ``--no-publish``); the view never guesses.

The card *number* is not in the topics (they carry only the masked number):
:class:`CardNumbers` loads the sealed numbers from PostgreSQL once, at start, and a new card
on first use. A card's number never changes, so nothing is ever stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.orm import Session, sessionmaker

from db.crypto import SecretBox
from db.repositories import cards as cards_repo
from ingest_api.readers import Backoff, ReaderState, read_forever
from schemas.cards import CardConfigured, PartnerConfigured
from schemas.registry import SchemaError, decode
from schemas.topics import CONFIG_CARDS, CONFIG_PARTNERS
from schemas.topology import ensure_topics, topic_partitions

log = logging.getLogger(__name__)

DEFAULT_CATCH_UP_S = 30.0


class ConfigView:
    """The newest ``PartnerConfigured`` per partner and ``CardConfigured`` per card."""

    def __init__(self, bootstrap_servers: str, *, topic_prefix: str = "") -> None:
        self._bootstrap = bootstrap_servers
        self._prefix = topic_prefix
        self.partners: dict[str, PartnerConfigured] = {}
        self.cards: dict[str, CardConfigured] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.reader = ReaderState("config topics")

    def partner(self, partner_id: str) -> PartnerConfigured | None:
        return self.partners.get(partner_id)

    def card(self, card_id: str) -> CardConfigured | None:
        return self.cards.get(card_id)

    # --- in-memory half (tests feed it directly) -----------------------------------------

    def apply(self, message: object) -> None:
        if isinstance(message, PartnerConfigured):
            held_partner = self.partners.get(message.partner_id)
            if held_partner is None or message.version >= held_partner.version:
                self.partners[message.partner_id] = message
        elif isinstance(message, CardConfigured):
            held_card = self.cards.get(message.card_id)
            if held_card is None or message.version >= held_card.version:
                self.cards[message.card_id] = message

    def _handle(self, raw: bytes | None) -> None:
        if raw is None:
            return  # a tombstone: configurations are never deleted, only changed
        try:
            _, message = decode(raw)
        except SchemaError as exc:
            log.warning("undecodable configuration skipped: %s", exc)
            return
        self.apply(message)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, catch_up_s: float = DEFAULT_CATCH_UP_S) -> None:
        """Read both topics up to their current end, then follow them in the background."""
        specs = (CONFIG_PARTNERS, CONFIG_CARDS)
        await ensure_topics(self._bootstrap, specs, prefix=self._prefix)
        partitions: list[TopicPartition] = []
        for spec in specs:
            partitions += await topic_partitions(
                self._bootstrap, self._prefix + spec.name, wait_s=10.0
            )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        self._consumer = consumer
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            await asyncio.wait_for(self._catch_up(consumer, partitions), catch_up_s)
        except BaseException:
            await self.stop()
            raise
        self._reader_task = asyncio.create_task(
            read_forever(self.reader, self._fetch, self._handle, Backoff(first_s=0.5)),
            name="config-view",
        )

    async def _catch_up(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        ends = await consumer.end_offsets(partitions)
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                for value in await self._fetch():
                    self._handle(value)
        self.reader.last_record_s = time.time()

    async def _fetch(self) -> Iterable[bytes | None]:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=500)
        return [record.value for records in batches.values() for record in records]

    async def stop(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
            self._reader_task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


class CardNumbers:
    """Card numbers by card id, decrypted once per process (never logged, never shown
    except where :func:`~ingest_api.orders_common.card_to_pay` needs the full number)."""

    def __init__(self, session_factory: sessionmaker[Session], box: SecretBox) -> None:
        self._sessions = session_factory
        self._box = box
        self._numbers: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._numbers)

    async def start(self) -> None:
        self._numbers = await asyncio.to_thread(self._load_all)

    def _load_all(self) -> dict[str, str]:
        with self._sessions() as session:
            return cards_repo.card_pans(session, self._box)

    async def get(self, card_id: str) -> str | None:
        number = self._numbers.get(card_id)
        if number is None:
            number = await asyncio.to_thread(self._load_one, card_id)
            if number is not None:
                self._numbers[card_id] = number
        return number

    def _load_one(self, card_id: str) -> str | None:
        with self._sessions() as session:
            return cards_repo.card_pan(session, self._box, card_id)


__all__ = ["CardNumbers", "ConfigView"]
