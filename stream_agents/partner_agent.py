"""The partner agent: partners' balances (``partner-ledger``, key partner id → table ``balances``).

One entry per partner holds its balance per currency and every (order, kind) operation it
applied with the balance right after it. Keeping both in one entry makes each operation one
table write, so a crash can never leave a balance changed without the record that it was
(the next delivery would apply it twice), nor the other way round.

A repeated operation re-publishes its ``ledger.posted`` (same id, same balance) and, for a
hold, the answer to the order agent again; a refused hold (insufficient funds) is
remembered too, so its repeats are refused alike even if the balance has grown since.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from copy import deepcopy
from typing import Any, Final

import faust

from domain.errors import InsufficientFunds, InsufficientHeld
from domain.ledger import (
    EXTERNAL_SETTLEMENT,
    SYSTEM_FEES,
    Balance,
    PostingKind,
    capture,
    credit,
    hold,
    partner_available,
    partner_held,
    release,
)
from domain.orders import DeclineReason
from schemas import ledger as wl
from schemas import orders as w
from schemas.envelope import Envelope, Message
from schemas.topics import LEDGER_EVENTS, ORDER_COMMANDS, PARTNER_LEDGER
from stream_agents.bus import Bus
from stream_agents.wire import Out, message_id

log = logging.getLogger(__name__)

State = dict[str, Any]
_K = PostingKind

#: Operations that settle a hold; an order gets at most one of them, and only after its hold.
_SETTLING: Final = frozenset({_K.RELEASE, _K.CAPTURE})


def legs(kind: PostingKind, partner_id: str, amount: int, fee: int) -> list[tuple[str, int]]:
    """The balanced legs of one operation, zero legs left out.

    The same transactions as :func:`domain.ledger.postings_for` builds from an order event,
    computed from the operation's own fields (the agent has no order); a unit test keeps
    the two in agreement.
    """
    available, held, total = partner_available(partner_id), partner_held(partner_id), amount + fee
    entries = {
        _K.HOLD: [(available, -total), (held, total)],
        _K.RELEASE: [(held, -total), (available, total)],
        _K.CAPTURE: [(held, -total), (EXTERNAL_SETTLEMENT, amount), (SYSTEM_FEES, fee)],
        _K.DEPOSIT_CREDIT: [
            (EXTERNAL_SETTLEMENT, -amount),
            (available, amount - fee),
            (SYSTEM_FEES, fee),
        ],
    }[kind]
    return [(account, value) for account, value in entries if value]


def _apply(kind: PostingKind, balance: Balance, amount: int, fee: int) -> Balance:
    if kind is _K.HOLD:
        return hold(balance, amount + fee)
    if kind is _K.RELEASE:
        return release(balance, amount + fee)
    if kind is _K.CAPTURE:
        return capture(balance, amount + fee)
    return credit(balance, amount - fee)


def handle(
    state: State | None, op: wl.ApplyLedgerOp, now_ms: int
) -> tuple[State | None, list[Out]]:
    """Apply one operation; returns the new state (``None``: unchanged) and what to send."""
    uid, kind = str(op.uid), op.op
    state = deepcopy(state) if state else {"balances": {}, "applied": {}}
    done = state["applied"].get(uid, {})
    if kind in done:
        return None, _answers(op, done[kind])
    if kind in _SETTLING and (not isinstance(done.get(_K.HOLD), dict) or _SETTLING & set(done)):
        log.error("ledger %s of order %s refused: no hold to settle", kind, uid)
        return None, []
    current = state["balances"].get(op.currency, {"available_minor": 0, "held_minor": 0})
    balance = Balance(available_minor=current["available_minor"], held_minor=current["held_minor"])
    try:
        after = _apply(kind, balance, op.amount_minor, op.fee_minor)
    except InsufficientFunds:
        record: dict[str, Any] = {"declined": True, "at_ms": now_ms}
    except InsufficientHeld:
        log.error("ledger %s of order %s refused: held funds too low", kind, uid)
        return None, []
    else:
        version = current.get("version", 0) + 1
        record = {
            "available_minor": after.available_minor,
            "held_minor": after.held_minor,
            "balance_version": version,
            "at_ms": now_ms,
        }
        state["balances"][op.currency] = {
            "available_minor": after.available_minor,
            "held_minor": after.held_minor,
            "version": version,
        }
    state["applied"].setdefault(uid, {})[kind] = record
    return state, _answers(op, record)


def _answers(op: wl.ApplyLedgerOp, record: dict[str, Any]) -> list[Out]:
    """The posting of an applied operation (and a hold's answer), rebuilt from its record."""
    uid, at_ms = str(op.uid), record["at_ms"]
    if record.get("declined"):
        reason = DeclineReason.INSUFFICIENT_FUNDS
        decline = w.DeclineOrder(uid=op.uid, reason=reason)
        return [Out(ORDER_COMMANDS.name, decline, message_id(uid, decline.TYPE, reason), at_ms)]
    posted = wl.LedgerPosted(
        partner_id=op.partner_id,
        uid=op.uid,
        currency=op.currency,
        kind=op.op,
        legs=[
            wl.Leg(account=account, amount_minor=value)
            for account, value in legs(op.op, op.partner_id, op.amount_minor, op.fee_minor)
        ],
        available_minor=record["available_minor"],
        held_minor=record["held_minor"],
        balance_version=record["balance_version"],
    )
    outputs = [Out(LEDGER_EVENTS.name, posted, message_id(uid, posted.TYPE, op.op), at_ms)]
    if op.op is _K.HOLD:
        held = w.MarkFundsHeld(uid=op.uid)
        outputs.append(Out(ORDER_COMMANDS.name, held, message_id(uid, held.TYPE), at_ms))
    return outputs


def install(app: faust.App, bus: Bus, now_ms: Callable[[], int]) -> None:
    """Declare the ``balances`` table and the agent."""
    balances = app.Table("balances", key_type=str, partitions=PARTNER_LEDGER.partitions)

    def on_op(env: Envelope, message: Message) -> list[Out]:
        assert isinstance(message, wl.ApplyLedgerOp)
        state, outputs = handle(balances.get(message.partner_id), message, now_ms())
        if state is not None:
            balances[message.partner_id] = state
        return outputs

    @app.agent(bus.topic(PARTNER_LEDGER.name), name="partner-agent")
    async def partner_agent(stream: faust.StreamT[bytes]) -> None:
        await bus.consume(stream, PARTNER_LEDGER.name, (wl.ApplyLedgerOp,), on_op)
