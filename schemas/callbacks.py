"""What every partner callback shares: the delivery id a partner dedupes on, the delivery row
to insert (:class:`NewDelivery`), and the time format of bodies. The order callbacks' bodies
are built in :mod:`stream_agents.callbacks.payload`; the dispute callbacks' in
:mod:`db.repositories.disputes`, in the transaction that opens or resolves the dispute."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

#: Namespace of delivery ids: ``uuid5(namespace, "<order uid>:<event type>")``.
DELIVERY_NAMESPACE: Final = uuid.UUID("3b0f6d2a-8c41-4e57-b9a6-51d2c7e08f14")


def delivery_id(order_uid: uuid.UUID, event_type: str) -> uuid.UUID:
    """The id a partner dedupes on: the same order and event always give the same id."""
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{order_uid}:{event_type}")


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery row to insert: identity, routing facts and the exact body."""

    delivery_id: uuid.UUID
    order_uid: uuid.UUID
    event_type: str
    order_version: int
    partner_id: str
    body: str


def iso_ms(epoch_ms: int) -> str:
    """``2026-01-01T00:00:00.000Z``: UTC, milliseconds, the form every body uses."""
    return iso_time(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


def iso_time(moment: datetime) -> str:
    """An aware ``moment`` in the bodies' form (UTC, milliseconds, ``Z``)."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
