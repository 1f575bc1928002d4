"""The versioned envelope every Keeper message travels in.

A message on any topic is one JSON object::

    {"message_id": "...", "type": "order.open", "schema_version": 1,
     "occurred_at": "2026-11-28T04:16:31.123456Z", "key": "<uid>", "payload": {...}}

``type`` + ``schema_version`` name the payload schema; consumers decode through the registry
in :mod:`schemas.registry`, so a message type can evolve (a new version, an upcaster from the
old one) without a flag day. Amounts inside payloads are integers of minor units plus an
ISO 4217 currency, never floats.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from domain.money import MAX_AMOUNT_MINOR

MessageType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
AmountMinor = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_MINOR)]
NonNegativeMinor = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT_MINOR)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Transport wrapper: identity, type, version and time of one message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: MessageType
    schema_version: Annotated[StrictInt, Field(ge=1)]
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    key: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any]


class Message(BaseModel):
    """Base of every payload schema. Subclasses set ``TYPE``, ``VERSION`` and ``key``."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def message_key(self) -> str:
        """The Kafka key: the entity whose partition orders this message."""
        raise NotImplementedError
