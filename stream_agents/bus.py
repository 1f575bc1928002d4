"""The agents' edge to Kafka: declared topics, sending outputs, decoding input, dead letters.

Every topic carries raw bytes (a ``schemas`` envelope); decoding and encoding go through
``schemas.registry`` so that agents, the API and the projector agree byte for byte. Topics
are declared with their catalogue partition counts (they are created beforehand by
:func:`stream_agents.topology.ensure_topics`): a table must have as many partitions as the
topic feeding it, and Faust would otherwise assume its own default.

A message that cannot be decoded, is of a type the agent does not handle, or makes the
handler fail goes to ``dead-letters`` (key: the source topic) and the stream moves on: at
least once delivery would otherwise replay a poison message forever and stall its partition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import faust

from schemas.envelope import Envelope, Message
from schemas.registry import SchemaError, decode
from schemas.topics import ALL_TOPICS, DEAD_LETTERS
from stream_agents.settings import AgentSettings
from stream_agents.wire import Out

log = logging.getLogger(__name__)

#: Handles one decoded message; returns what to send. It may read and write tables.
Handler = Callable[[Envelope, Message], list[Out]]


class Bus:
    """The app's topics by catalogue name, and the send/receive plumbing around handlers."""

    def __init__(self, app: faust.App, settings: AgentSettings) -> None:
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

    async def send(self, outputs: Iterable[Out]) -> None:
        """Send in order; per key (hence per partition) the order is kept."""
        for out in outputs:
            await self.topics[out.topic].send(key=out.key, value=out.encode())

    async def dead_letter(self, source: str, raw: bytes | None, reason: str) -> None:
        # The reason names the failure, never the payload: it may carry card data.
        log.warning("dead letter from %s: %s", source, reason)
        await self.topics[DEAD_LETTERS.name].send(
            key=source.encode(),
            value=raw,
            headers=[("reason", reason.encode()[:1000])],
        )

    async def consume(
        self,
        stream: faust.StreamT[bytes],
        source: str,
        accepts: tuple[type[Message], ...],
        handler: Handler,
        on_tombstone: Callable[[bytes | None], None] | None = None,
    ) -> None:
        """Decode each message of ``stream``, run ``handler`` on it and send its outputs.

        A message without a value is a tombstone (a deletion on a compacted topic): it goes
        to ``on_tombstone`` with its key, or to the dead letters if the topic has none.
        """
        async for event in stream.events():
            raw = event.value
            if raw is None:
                if on_tombstone is None:
                    await self.dead_letter(source, raw, "empty message")
                else:
                    on_tombstone(event.key)
                continue
            try:
                env, message = decode(raw)
            except SchemaError as exc:
                await self.dead_letter(source, raw, f"undecodable: {exc}")
                continue
            if not isinstance(message, accepts):
                await self.dead_letter(source, raw, f"unexpected type {env.type}")
                continue
            try:
                outputs = handler(env, message)
            except Exception as exc:  # a bug or corrupt state: park the message, keep going
                log.exception("%s: handler failed on %s %s", source, env.type, env.message_id)
                await self.dead_letter(source, raw, f"handler failed: {type(exc).__name__}")
                continue
            await self.send(outputs)
