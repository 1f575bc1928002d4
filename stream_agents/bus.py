"""The agents' edge to Kafka: declared topics, sending outputs, decoding input, dead letters.

Every topic carries raw bytes (a ``schemas`` envelope); decoding and encoding go through
``schemas.registry`` so that agents, the API and the projector agree byte for byte. Topics
are declared with their catalogue partition counts (they are created beforehand by
:func:`schemas.topology.ensure_topics`): a table must have as many partitions as the
topic feeding it, and Faust would otherwise assume its own default.

A message that cannot be decoded, is of a type the agent does not handle, or makes the
handler fail goes to ``dead-letters`` (key: the source topic; the raw value untouched; the
reason and the source coordinates -- topic, partition, offset, key, the app's consumer group
-- as the same headers the consumer processes use, :mod:`stream_agents.letter_headers`) and
the stream moves on: at least once delivery would otherwise replay a poison message forever
and stall its partition. The projector stores each one in ``dead_letters``, from where it can
be re-published after a fix (``python -m stream_agents.dead_letters``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import PartitionsMismatch
from faust.streams import current_event
from faust.types import FutureMessage, RecordMetadata

from schemas.envelope import Envelope, Message
from schemas.registry import SchemaError, decode
from schemas.topics import ALL_TOPICS, DEAD_LETTERS
from stream_agents import letter_headers
from stream_agents.confirmed import confirm
from stream_agents.settings import AgentSettings
from stream_agents.wire import Out

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Handles one decoded message; returns what to send. It may read and write tables.
Handler = Callable[[Envelope, Message], list[Out]]

#: Handler failures that are the broker's, not the message's: a table write that meets a
#: metadata gap while a broker is away (Faust compares the source topic's partition count
#: with its changelog's from the consumer's metadata, and a partial view makes them differ
#: for a moment), or the broker itself refusing. The message is not poison: run it again.
TRANSIENT_HANDLER_ERRORS: Final = (PartitionsMismatch, KafkaError)


@dataclass(frozen=True, slots=True)
class HandlerRetry:
    """How long a transient handler failure is retried before the message is parked:
    ``attempts`` runs in all, waiting ``first_s`` then twice as long each time (``max_s``
    at most): about 25 s with the defaults, longer than a broker's leader election."""

    attempts: int = 8
    first_s: float = 0.2
    max_s: float = 5.0


async def run_handler(
    handler: Handler, env: Envelope, message: Message, retry: HandlerRetry
) -> list[Out]:
    """``handler(env, message)``, run again after a transient failure (see
    :data:`TRANSIENT_HANDLER_ERRORS`); the last failure, or any other, propagates.

    Running a handler again is safe: each one is idempotent under redelivery (a repeated
    message changes nothing and re-sends the same outputs), and a table write that failed
    stored nothing."""
    return await retry_transient(
        lambda: handler(env, message), retry, f"{env.type} {env.message_id}"
    )


async def retry_transient(run: Callable[[], T], retry: HandlerRetry, what: str) -> T:
    """``run()``, again after a transient failure (:data:`TRANSIENT_HANDLER_ERRORS`), waiting
    longer each time; the last failure, or any other, propagates."""
    delay = retry.first_s
    for attempt in range(1, retry.attempts):
        try:
            return run()
        except TRANSIENT_HANDLER_ERRORS as exc:
            log.warning(
                "%s: %s, running it again in %.1f s (attempt %d of %d)",
                what,
                type(exc).__name__,
                delay,
                attempt,
                retry.attempts,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, retry.max_s)
    return run()  # the last attempt: its failure propagates


class Bus:
    """The app's topics by catalogue name, and the send/receive plumbing around handlers."""

    def __init__(
        self, app: faust.App, settings: AgentSettings, retry: HandlerRetry | None = None
    ) -> None:
        self.retry = retry or HandlerRetry()
        #: The agents' consumer group (Faust's app id), named in their dead letters.
        self.consumer_group = str(app.conf.id)
        self.topics: dict[str, faust.TopicT] = {
            spec.name: app.topic(
                settings.topic(spec.name),
                partitions=spec.partitions,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
            )
            for spec in ALL_TOPICS
        }

    def topic(self, name: str) -> faust.TopicT:
        return self.topics[name]

    async def send(self, outputs: Iterable[Out]) -> list[Awaitable[RecordMetadata]]:
        """Send in order; per key (hence per partition) the order is kept. The records are
        handed to the Kafka client; the returned futures resolve once the broker has them."""
        return [
            await self.topics[out.topic].send(key=out.key, value=out.encode()) for out in outputs
        ]

    async def dead_letter(self, source: str, raw: bytes | None, reason: str) -> None:
        """Park ``raw`` (the record being processed, from catalogue topic ``source``).

        Its coordinates come from the event the stream is processing (Faust's current
        event); outside a stream (tests) the catalogue name stands in with no offset. The
        reason names the failure, never the payload: it may carry card data.
        """
        event = current_event()
        message = event.message if event is not None else None
        topic = message.topic if message is not None else source
        partition = message.partition if message is not None else -1
        offset = message.offset if message is not None else -1
        key = event.key if event is not None and isinstance(event.key, bytes) else None
        log.warning(
            "dead letter from %s[%d]@%d: %s", topic, partition, offset, letter_headers.clean(reason)
        )
        await self.topics[DEAD_LETTERS.name].send(
            key=source.encode(),
            value=raw,
            headers=letter_headers.build(
                reason,
                topic=topic,
                partition=partition,
                offset=offset,
                key=key,
                consumer=self.consumer_group,
            ),
        )

    async def consume(
        self,
        stream: faust.StreamT[bytes],
        source: str,
        accepts: tuple[type[Message], ...],
        handler: Handler,
        on_tombstone: Callable[[bytes | None], None] | None = None,
        written: Callable[[], list[FutureMessage]] | None = None,
    ) -> None:
        """Decode each message of ``stream``, run ``handler`` on it and send its outputs.

        A message without a value is a tombstone (a deletion on a compacted topic): it goes
        to ``on_tombstone`` with its key, or to the dead letters if the topic has none.
        ``written`` hands out the table writes a message made (a confirming table's,
        :mod:`stream_agents.confirmed`): the message is acknowledged once the broker has them.
        """
        async for event in stream.events():
            raw = event.value
            if raw is None and on_tombstone is not None:
                on_tombstone(event.key)
            else:
                await self._handle(source, raw, accepts, handler)
            if written is not None:
                await confirm(written())

    async def _handle(
        self,
        source: str,
        raw: bytes | None,
        accepts: tuple[type[Message], ...],
        handler: Handler,
    ) -> None:
        """Decode ``raw``, run ``handler`` on it and send its outputs (or park it)."""
        accepted = await self.accept(source, raw, accepts)
        if accepted is None:
            return
        env, message = accepted
        try:
            outputs = await run_handler(handler, env, message, self.retry)
        except Exception as exc:  # a bug or corrupt state: park the message, keep going
            log.exception("%s: handler failed on %s %s", source, env.type, env.message_id)
            await self.dead_letter(source, raw, f"handler failed: {type(exc).__name__}")
            return
        await confirm(await self.send(outputs))

    async def accept(
        self, source: str, raw: bytes | None, accepts: tuple[type[Message], ...]
    ) -> tuple[Envelope, Message] | None:
        """``raw`` decoded, or ``None`` once it is parked: empty, undecodable, or of a type
        the consumer does not handle."""
        if raw is None:
            await self.dead_letter(source, raw, "empty message")
            return None
        try:
            env, message = decode(raw)
        except SchemaError as exc:
            await self.dead_letter(source, raw, f"undecodable: {exc}")
            return None
        if not isinstance(message, accepts):
            await self.dead_letter(source, raw, f"unexpected type {env.type}")
            return None
        return env, message
