"""The agents' outgoing messages: where they go, their deterministic ids, and the timer clock.

Agents are thin: decode, translate (:mod:`schemas.translation`), call the core, translate
back, send. What is the agents' own lives here: an :class:`Out` addresses one message to a
topic or to another part of the same desk step.

Determinism. Every message an agent sends gets its ``message_id`` from :func:`message_id`
(a UUIDv5 of the facts it states) and its ``occurred_at`` from a time already recorded in the
state or the triggering message, never from the clock. A re-publication after a crash or a
redelivered command is therefore byte-identical to the first, and every consumer downstream
can drop it by id.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Final

from schemas.envelope import Message
from schemas.registry import encode
from schemas.translation import from_epoch_ms

#: Namespace of every id the agents derive; changing it would break deduplication downstream.
NAMESPACE: Final = uuid.UUID("6f1c0d52-3a57-4e0b-9a39-2b1f5d9c7e10")


def message_id(*parts: object) -> uuid.UUID:
    """The id of the message that states ``parts`` (e.g. uid, version, type)."""
    return uuid.uuid5(NAMESPACE, ":".join(str(part) for part in parts))


#: Where the parts of one desk step address each other (ADR 0005): the order, its pool's
#: cards, the partner's ledger, the cards' turnover. An :class:`Out` to one of these is
#: handled within the same step, never sent.
TO_ORDER: Final = "desk/order"
TO_POOL: Final = "desk/pool"
TO_LEDGER: Final = "desk/ledger"
TO_TURNOVER: Final = "desk/turnover"
#: Bank notifications and device health (ADR 0010).
TO_NOTICE: Final = "desk/notice"
WITHIN_DESK: Final = frozenset({TO_ORDER, TO_POOL, TO_LEDGER, TO_TURNOVER, TO_NOTICE})


@dataclass(frozen=True, slots=True)
class Out:
    """One message: to a catalogue topic (unprefixed name), or within the desk
    (:data:`TO_ORDER`, :data:`TO_POOL`, :data:`TO_LEDGER`), and the enveloped payload."""

    topic: str
    message: Message
    message_id: uuid.UUID
    occurred_at_ms: int

    @property
    def key(self) -> bytes:
        return self.message.message_key().encode()

    def encode(self) -> bytes:
        return encode(
            self.message,
            message_id=self.message_id,
            occurred_at=from_epoch_ms(self.occurred_at_ms),
        )


def epoch_ms_now() -> int:
    """The wall clock as epoch milliseconds: only for timers, never for a decision."""
    return time.time_ns() // 1_000_000
