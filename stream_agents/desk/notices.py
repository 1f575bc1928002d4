"""The desk's notice part: a bank notification meets the deposit it pays (ADR 0010).

The desk owns the card's open orders (the pool part's slot ``card/<pool>/<card>`` lists them
with their amounts), so it is where a parsed credit finds its order, in the same keyed step,
in partition order with the payer's confirmation, the expiry and the operators' decisions.

A credit **matches** the one open deposit (``new`` or ``processing``) on its card with exactly
its amount and currency, received by the phone between the order's creation and its expiry
plus the grace period (``grace_ms``). An order still ``new`` must have been paid before its
deadline (it is confirmed at the bank's instant; after it, the order expires). Then:

- policy ``auto``: the order is confirmed if still ``new`` and approved, with the device as
  the decider (``device:<id>``) and the notification's id as the decision's id, so the audit
  trail names both and a repeated approval is recognised by the core as a repeat;
- policy ``suggest``: the order is confirmed if still ``new`` (it enters the operator queue)
  and the match is recorded for the queue to show;
- otherwise (none, more than one, outside the window): ``unmatched``, with the reason.

The decision is kept in ``notice/<notification id>``, written in the first rank of the flush
order, before the card slots, balances and orders it sets off. A redelivered notification
therefore finds its decision, never decides again, and re-sends the same commands to the
order part: the core treats them as repeats, or applies what a crash lost. The money moves only
through the order's approval and the ledger part, as for an operator's click.

Device health (``device/<pool>/<card>``): the newest ``device.health`` per card, by its
instant; :func:`is_silent` is what the pool part asks before handing out a card.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.orders import Direction, OrderStatus
from schemas import notifications as wn
from schemas import orders as w
from schemas.topics import NOTIFICATION_OUTCOMES
from stream_agents.desk.outputs import OrderEntry
from stream_agents.wire import TO_ORDER, Out, message_id

Entry = dict[str, Any]

#: Statuses in which a deposit can still be paid by a credit.
MATCHABLE = frozenset({OrderStatus.NEW, OrderStatus.PROCESSING})


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: wn.Outcome
    uid: str | None = None
    reason: wn.Unmatched | None = None

    def to_json(self, at_ms: int) -> Entry:
        return {"outcome": self.outcome, "uid": self.uid, "reason": self.reason, "at_ms": at_ms}

    @classmethod
    def from_json(cls, entry: Entry) -> Decision:
        reason = entry.get("reason")
        return cls(
            wn.Outcome(entry["outcome"]),
            entry.get("uid"),
            None if reason is None else wn.Unmatched(reason),
        )


@dataclass(frozen=True, slots=True)
class NoticeStep:
    """The notice's entry to write (``None``: already there) and what to send."""

    entry: Entry | None
    outputs: list[Out]


def decide(
    message: wn.MatchNotification,
    slot: Entry | None,
    order_of: Callable[[str], OrderEntry | None],
) -> Decision:
    """The order ``message`` pays, from the card's open orders (see the module)."""
    open_orders: Mapping[str, Any] = (slot or {}).get("open", {})
    amount_minor = message.amount_minor
    same_amount = [uid for uid, (amount, _) in open_orders.items() if amount == amount_minor]
    candidates = [
        entry
        for entry in map(order_of, same_amount)
        if entry is not None and _payable(entry, message)
    ]
    in_window = [entry for entry in candidates if _in_window(entry, message)]
    if len(in_window) == 1:
        outcome = wn.Outcome.APPROVED if message.policy is wn.MatchPolicy.AUTO else None
        return Decision(outcome or wn.Outcome.SUGGESTED, in_window[0].order.uid)
    if len(in_window) > 1:
        return Decision(wn.Outcome.UNMATCHED, reason=wn.Unmatched.AMBIGUOUS)
    if candidates:
        return Decision(wn.Outcome.UNMATCHED, reason=wn.Unmatched.OUTSIDE_WINDOW)
    return Decision(wn.Outcome.UNMATCHED, reason=wn.Unmatched.NO_OPEN_ORDER)


def _payable(entry: OrderEntry, message: wn.MatchNotification) -> bool:
    order = entry.order
    return (
        order.direction is Direction.DEPOSIT
        and order.status in MATCHABLE
        and order.card_id == message.card_id
        and order.currency == message.currency
        and order.amount_minor == message.amount_minor
    )


def _in_window(entry: OrderEntry, message: wn.MatchNotification) -> bool:
    order, received = entry.order, message.received_at_ms
    if order.status is OrderStatus.NEW:  # paid before its deadline, or it expires
        return order.created_at_ms <= received < order.expires_at_ms
    return order.created_at_ms <= received <= order.expires_at_ms + message.grace_ms


def handle_match(
    stored: Entry | None,
    message: wn.MatchNotification,
    slot: Entry | None,
    order_of: Callable[[str], OrderEntry | None],
    at_ms: int,
) -> NoticeStep:
    """Decide once (or find the decision kept), and send what it sets off."""
    if stored is not None:
        decision, settled_at = Decision.from_json(stored), int(stored["at_ms"])
    else:
        decision, settled_at = decide(message, slot, order_of), at_ms
    entry = decision.to_json(at_ms) if stored is None else None
    order = order_of(decision.uid) if decision.uid is not None else None
    outputs = _order_commands(decision, message, order, at_ms)
    outputs.append(_settled(decision, message, settled_at))
    return NoticeStep(entry, outputs)


def _order_commands(
    decision: Decision, message: wn.MatchNotification, order: OrderEntry | None, at_ms: int
) -> list[Out]:
    """Confirm the order if still ``new``; approve it under ``auto``."""
    if decision.uid is None or order is None:
        return []
    uid, notice = uuid.UUID(decision.uid), str(message.notification_id)
    outputs = []
    if order.order.status is OrderStatus.NEW:
        confirm_at = min(at_ms, message.received_at_ms)  # the bank's instant: before the deadline
        confirm = w.ConfirmPayment(uid=uid, desk=order.desk)
        outputs.append(Out(TO_ORDER, confirm, message_id(notice, confirm.TYPE), confirm_at))
    if decision.outcome is wn.Outcome.APPROVED:
        approve = w.DecideOrder(
            uid=uid,
            desk=order.desk,
            verdict=w.Verdict.APPROVE,
            operator=device_decider(message.device_id),
            decision_id=message.notification_id,
            reason=f"bank notification {notice}",
        )
        outputs.append(Out(TO_ORDER, approve, message_id(notice, approve.TYPE), at_ms))
    return outputs


def device_decider(device_id: str) -> str:
    """How an order approved by a device's notification names its decider."""
    return f"device:{device_id}"


def _settled(decision: Decision, message: wn.MatchNotification, at_ms: int) -> Out:
    settled = wn.NotificationSettled(
        notification_id=message.notification_id,
        device_id=message.device_id,
        card_id=message.card_id,
        outcome=decision.outcome,
        uid=None if decision.uid is None else uuid.UUID(decision.uid),
        reason=decision.reason,
        settled_at_ms=at_ms,
    )
    notice = str(message.notification_id)
    return Out(NOTIFICATION_OUTCOMES.name, settled, message_id(notice, settled.TYPE), at_ms)


# --- device health ------------------------------------------------------------------------------


def handle_health(stored: Entry | None, message: wn.DeviceHealth) -> Entry | None:
    """The card's device health after ``message``; ``None`` when nothing changes (an older
    or repeated report). Order-free: the newest instant wins."""
    if stored is not None and stored["at_ms"] >= message.at_ms:
        return None
    return {"silent": message.silent, "at_ms": message.at_ms, "device_id": message.device_id}


def is_silent(stored: Entry | None) -> bool:
    """True while the card's device is reported silent: the card is out of rotation."""
    return bool(stored and stored["silent"])
