"""Publish card and partner configuration from PostgreSQL to the compacted config topics.

PostgreSQL is where people edit configuration; the agents read it from ``config-cards`` and
``config-partners`` (compacted, keyed by entity id, so the newest message per key is the
current configuration and a fresh agent reads the whole topic). Publishing is idempotent:
re-publishing a configuration sends the same key, payload and message id -- the id is derived
from (type, entity, version) -- so consumers that dedupe by id see it once.

Producers use ``acks=all`` and idempotence: a configuration reported as published is on every
in-sync replica, and a retried send cannot duplicate or reorder messages of one entity.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from aiokafka import AIOKafkaProducer

from schemas.cards import CardConfigured, PartnerConfigured
from schemas.envelope import Message
from schemas.registry import encode
from schemas.topics import CONFIG_CARDS, CONFIG_PARTNERS
from schemas.topology import ensure_topics

T = TypeVar("T")

#: Namespace of configuration message ids (uuid5 of type, entity and version).
CONFIG_MESSAGE_NAMESPACE: Final = uuid.UUID("6f1d7c43-5a0e-4d55-9a59-2f0b8c1e7d21")
DEFAULT_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class PublishReport:
    partners: int
    cards: int
    partner_topic: str
    card_topic: str


def config_message_id(message: CardConfigured | PartnerConfigured) -> uuid.UUID:
    """Same configuration version, same id: a re-publish is recognisably a duplicate."""
    name = f"{message.TYPE}:{message.message_key()}:{message.version}"
    return uuid.uuid5(CONFIG_MESSAGE_NAMESPACE, name)


async def _send_all(producer: AIOKafkaProducer, topic: str, messages: Sequence[Message]) -> int:
    pending = []
    for message in messages:
        assert isinstance(message, CardConfigured | PartnerConfigured)
        value = encode(message, message_id=config_message_id(message))
        pending.append(await producer.send(topic, key=message.message_key().encode(), value=value))
    await asyncio.gather(*pending)  # raises the first failed delivery
    return len(pending)


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)


async def _publish(bootstrap: str, batches: Sequence[tuple[str, Sequence[Message]]]) -> list[int]:
    producer = _producer(bootstrap)
    await producer.start()
    try:
        return [await _send_all(producer, topic, messages) for topic, messages in batches]
    finally:
        await producer.stop()


async def publish_card_configs(
    bootstrap: str, configs: Iterable[CardConfigured], *, topic: str = CONFIG_CARDS.name
) -> int:
    """Send every card configuration (key: card id); the number sent once all are acked."""
    (count,) = await _publish(bootstrap, [(topic, list(configs))])
    return count


async def publish_partner_configs(
    bootstrap: str, configs: Iterable[PartnerConfigured], *, topic: str = CONFIG_PARTNERS.name
) -> int:
    """Send every partner configuration (key: partner id); the number sent once all are acked."""
    (count,) = await _publish(bootstrap, [(topic, list(configs))])
    return count


async def publish_configs(
    bootstrap: str,
    *,
    partners: Iterable[PartnerConfigured] = (),
    cards: Iterable[CardConfigured] = (),
    topic_prefix: str = "",
    ensure: bool = True,
) -> PublishReport:
    """Partners then cards through one producer. With ``ensure`` the two config topics are
    first created with their compacted policy if missing: a topic auto-created by the broker
    on first send would get the default ``delete`` policy and lose old configurations."""
    partner_topic = topic_prefix + CONFIG_PARTNERS.name
    card_topic = topic_prefix + CONFIG_CARDS.name
    if ensure:
        await ensure_topics(bootstrap, (CONFIG_PARTNERS, CONFIG_CARDS), prefix=topic_prefix)
    sent_partners, sent_cards = await _publish(
        bootstrap, [(partner_topic, list(partners)), (card_topic, list(cards))]
    )
    return PublishReport(sent_partners, sent_cards, partner_topic, card_topic)


def run_sync(coroutine: Coroutine[Any, Any, T], timeout_s: float = DEFAULT_TIMEOUT_S) -> T:
    """Run a publishing coroutine from synchronous code, bounded by ``timeout_s``.

    Works even when the calling thread already runs an event loop (a console page, a test):
    the coroutine then gets its own loop on a short-lived worker thread.
    """
    bounded = asyncio.wait_for(coroutine, timeout_s)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bounded)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="config-publisher") as pool:
        return pool.submit(asyncio.run, bounded).result()


def publish_configs_sync(
    bootstrap: str,
    *,
    partners: Iterable[PartnerConfigured] = (),
    cards: Iterable[CardConfigured] = (),
    topic_prefix: str = "",
    ensure: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> PublishReport:
    """:func:`publish_configs` for synchronous callers such as the console and
    ``python -m ops_console.admin_cli``."""
    return run_sync(
        publish_configs(
            bootstrap, partners=partners, cards=cards, topic_prefix=topic_prefix, ensure=ensure
        ),
        timeout_s,
    )


__all__ = [
    "CONFIG_MESSAGE_NAMESPACE",
    "PublishReport",
    "config_message_id",
    "publish_card_configs",
    "publish_configs",
    "publish_configs_sync",
    "publish_partner_configs",
    "run_sync",
]
