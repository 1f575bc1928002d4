"""The API's side of Kafka: publish commands, and wait for the order agent's replies.

Every API process reads all partitions of ``order-replies`` from the end (no consumer group:
each process must see every reply, since any of them may be the one waiting). A waiter is
registered *before* its command is published, so a fast reply cannot slip past it.

The reply reader survives fetch errors (:func:`~ingest_api.readers.read_forever`): it logs,
backs off and goes on, and :attr:`CommandBus.reader` tells readiness whether it is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ingest_api.readers import Backoff, ReaderState, read_forever
from schemas.envelope import Message
from schemas.orders import OrderReply
from schemas.registry import SchemaError, decode, encode
from schemas.topics import ORDER_COMMANDS, ORDER_REPLIES
from stream_agents.topology import topic_partitions

log = logging.getLogger(__name__)


class CommandBus:
    def __init__(
        self, bootstrap_servers: str, *, topic_prefix: str = "", backoff: Backoff | None = None
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._commands_topic = topic_prefix + ORDER_COMMANDS.name
        self._replies_topic = topic_prefix + ORDER_REPLIES.name
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiters: dict[uuid.UUID, asyncio.Future[OrderReply]] = {}
        self._backoff = backoff or Backoff()
        #: The reply reader's state, for readiness.
        self.reader = ReaderState("order-replies")

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",  # an acknowledged order must survive a broker failure
            enable_idempotence=True,
            linger_ms=1,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await self._consumer.start()
        partitions = await topic_partitions(self._bootstrap, self._replies_topic, wait_s=10.0)
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before any command goes out
            await self._consumer.position(tp)
        self._reader = asyncio.create_task(
            read_forever(self.reader, self._fetch, self._dispatch, self._backoff),
            name="order-replies",
        )

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for waiter in self._waiters.values():
            waiter.cancel()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, command: Message) -> uuid.UUID:
        """Publish ``command`` and wait for the broker's acknowledgement; return its id."""
        assert self._producer is not None, "CommandBus.start() first"
        command_id = uuid.uuid4()
        await self._publish(command, command_id)
        return command_id

    async def ask(self, command: Message, timeout_s: float) -> tuple[uuid.UUID, OrderReply | None]:
        """Publish ``command`` and wait up to ``timeout_s`` for its reply (None on timeout).

        The command is acknowledged by the broker before the wait starts, so a timeout never
        means the command was lost: it will still be processed.
        """
        assert self._producer is not None, "CommandBus.start() first"
        command_id = uuid.uuid4()
        waiter: asyncio.Future[OrderReply] = asyncio.get_running_loop().create_future()
        self._waiters[command_id] = waiter
        try:
            await self._publish(command, command_id)
            try:
                return command_id, await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
            except TimeoutError:
                return command_id, None
        finally:
            self._waiters.pop(command_id, None)

    async def _publish(self, command: Message, command_id: uuid.UUID) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(
            self._commands_topic,
            key=command.message_key().encode(),
            value=encode(command, message_id=command_id),
        )

    async def _fetch(self) -> Iterable[bytes | None]:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=500)
        return [record.value for records in batches.values() for record in records]

    def _dispatch(self, raw: bytes | None) -> None:
        if raw is None:
            return
        try:
            _, message = decode(raw)
        except SchemaError as exc:
            log.warning("undecodable reply skipped: %s", exc)
            return
        if not isinstance(message, OrderReply):
            return
        waiter = self._waiters.get(message.command_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
