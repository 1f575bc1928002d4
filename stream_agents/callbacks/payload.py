"""What a partner receives: which events are owed, the delivery id, the exact JSON body.

Pure functions of an order event (no I/O), so the same event always yields the same
delivery id and the same bytes, however often Kafka redelivers it.
"""

from __future__ import annotations

import json
from typing import Any, Final

from schemas.callbacks import DELIVERY_NAMESPACE, NewDelivery, delivery_id, iso_ms, iso_time
from schemas.envelope import Envelope
from schemas.orders import (
    OrderApproved,
    OrderCancelled,
    OrderDeclined,
    OrderExpired,
    OrderFailed,
    OrderRejected,
    OrderSnapshot,
)

__all__ = ["DELIVERY_NAMESPACE", "TERMINAL_EVENTS", "NewDelivery", "delivery_id", "new_delivery"]

#: The events a partner is called back for: one per order, its terminal one.
TERMINAL_EVENTS: Final = (
    OrderApproved,
    OrderRejected,
    OrderFailed,
    OrderDeclined,
    OrderExpired,
    OrderCancelled,
)
TerminalEvent = (
    OrderApproved | OrderRejected | OrderFailed | OrderDeclined | OrderExpired | OrderCancelled
)


def order_fields(order: OrderSnapshot) -> dict[str, Any]:
    """The order as the partner API shows it; cards only masked, operators not named."""
    return {
        "uid": str(order.uid),
        "partner_order_id": order.partner_order_id,
        "direction": order.direction.value,
        "status": order.status.value,
        "amount_minor": order.amount_minor,
        "fee_minor": order.fee_minor,
        "currency": order.currency,
        "decline_reason": order.decline_reason.value if order.decline_reason else None,
        "payer_card_masked": order.payer_card_masked,
        "created_at": iso_ms(order.created_at_ms),
        "expires_at": iso_ms(order.expires_at_ms),
        "updated_at": iso_ms(order.updated_at_ms),
        "version": order.version,
    }


def new_delivery(env: Envelope, event: TerminalEvent) -> NewDelivery:
    """The delivery owed for ``event`` (its envelope gives the time it happened)."""
    order = event.order
    ident = delivery_id(order.uid, event.TYPE)
    document = {
        "delivery_id": str(ident),
        "event": event.TYPE,
        "occurred_at": iso_time(env.occurred_at),
        "order": order_fields(order),
    }
    return NewDelivery(
        delivery_id=ident,
        order_uid=order.uid,
        event_type=event.TYPE,
        order_version=order.version,
        partner_id=order.partner_id,
        body=json.dumps(document, separators=(",", ":")),
    )
