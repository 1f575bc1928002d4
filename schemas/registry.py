"""Encode messages into envelopes and decode them back, by (type, version).

Decoding is strict: an unknown type or version, a payload that does not match its schema,
or bytes that are not an envelope raise :class:`SchemaError`, which consumers route to a
dead-letter topic instead of guessing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from schemas.envelope import Envelope, Message, utc_now

M = TypeVar("M", bound=type[Message])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_SCHEMAS: dict[tuple[str, int], type[Message]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class SchemaError(ValueError):
    """Bytes that cannot be decoded into a known message."""


def register(cls: M) -> M:
    """Class decorator: make a payload schema decodable."""
    key = (cls.TYPE, cls.VERSION)
    if key in _SCHEMAS and _SCHEMAS[key] is not cls:
        raise ValueError(f"duplicate schema registration for {key}")
    _SCHEMAS[key] = cls
    return cls


def register_upcaster(type_: str, from_version: int, fn: Upcaster) -> None:
    """Teach the registry to lift ``type_`` payloads from ``from_version`` to the next one."""
    _UPCASTERS[(type_, from_version)] = fn


def registered() -> dict[tuple[str, int], type[Message]]:
    return dict(_SCHEMAS)


def envelope(
    message: Message,
    *,
    message_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    return Envelope(
        message_id=message_id or uuid.uuid4(),
        type=message.TYPE,
        schema_version=message.VERSION,
        occurred_at=occurred_at or utc_now(),
        key=message.message_key(),
        payload=message.model_dump(mode="json"),
    )


def encode(
    message: Message,
    *,
    message_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> bytes:
    """Serialise ``message`` in its envelope as compact UTF-8 JSON."""
    env = envelope(message, message_id=message_id, occurred_at=occurred_at)
    return env.model_dump_json().encode()


def decode_envelope(raw: bytes | str) -> Envelope:
    try:
        return Envelope.model_validate_json(raw)
    except ValidationError as exc:
        raise SchemaError(f"not a Keeper envelope: {exc.errors()[0]['msg']}") from exc


def decode(raw: bytes | str) -> tuple[Envelope, Message]:
    """Decode bytes into their envelope and the typed payload, upcasting old versions."""
    env = decode_envelope(raw)
    return env, payload_of(env)


def payload_of(env: Envelope) -> Message:
    type_, version, payload = env.type, env.schema_version, dict(env.payload)
    while (type_, version) not in _SCHEMAS:
        upcast = _UPCASTERS.get((type_, version))
        if upcast is None:
            raise SchemaError(f"unknown message type {type_!r} version {version}")
        payload, version = upcast(payload), version + 1
    cls = _SCHEMAS[(type_, version)]
    try:
        # Payloads arrive as JSON, so validate in JSON mode (UUIDs and datetimes as strings).
        return cls.model_validate_json(orjson.dumps(payload))
    except ValidationError as exc:
        raise SchemaError(f"{type_} v{version}: {exc.errors()[0]['msg']}") from exc
