"""The API's side of ``order-commands``: publish a command, acknowledged by the broker.

There is no reply channel: the API learns every outcome from ``order-events``
(:mod:`ingest_api.outcomes`, ADR 0003). A command's envelope carries the instant it was
issued (``occurred_at``), which is the ``at_ms`` the order agent decides with; the API
judges the command at that same instant, so the two agree on deadlines.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from aiokafka import AIOKafkaProducer

from schemas.envelope import Message
from schemas.registry import encode
from schemas.topics import ORDER_COMMANDS


class CommandBus:
    def __init__(self, bootstrap_servers: str, *, topic_prefix: str = "") -> None:
        self._bootstrap = bootstrap_servers
        self._commands_topic = topic_prefix + ORDER_COMMANDS.name
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",  # an acknowledged order must survive a broker failure
            enable_idempotence=True,
            linger_ms=1,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, command: Message, occurred_at: datetime | None = None) -> uuid.UUID:
        """Publish ``command`` and wait for the broker's acknowledgement; return its id.

        Once this returns the command is durable: a wait that times out afterwards never
        means it was lost, it will still be applied.
        """
        assert self._producer is not None, "CommandBus.start() first"
        command_id = uuid.uuid4()
        await self._producer.send_and_wait(
            self._commands_topic,
            key=command.message_key().encode(),
            value=encode(command, message_id=command_id, occurred_at=occurred_at),
        )
        return command_id
