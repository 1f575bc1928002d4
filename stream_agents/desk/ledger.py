"""The desk's ledger part: the balances of the partners working at the desk.

It keeps two kinds of entry in the desk's table, each small and of bounded size:

- ``balance/<partner>``: the partner's balance per currency, with a version that counts the
  operations applied to it;
- ``op/<uid>``: the operations applied for one order, by kind, each with the balance right
  after it and that balance's version (or the refusal of a hold, remembered so that its
  repeats are refused alike even if the balance has grown since).

An operation's entry is written before the balance (:mod:`stream_agents.desk.step` orders a
batch's writes), both to the same changelog partition, and Faust flushes the changelog
before it commits the source offset, so a crash can lose the balance write but never the
entry before it; the operation is then delivered again, finds its entry, and rolls the
balance forward from it (the entry says which version it made). Keeping every order's
operations in one partner entry instead would make each write carry the partner's whole
history, past Kafka's message size after a few thousand orders.

A repeated operation re-publishes its ``ledger.posted`` (same id, same balance) and, for a
hold, the answer to the order part again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

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
from schemas.topics import LEDGER_EVENTS
from stream_agents.wire import TO_ORDER, Out, message_id

log = logging.getLogger(__name__)

#: A table entry, as JSON values.
Entry = dict[str, Any]
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


@dataclass(frozen=True, slots=True)
class Step:
    """The result of one operation: what to write (``None``: unchanged), in this order."""

    operations: Entry | None
    balances: Entry | None
    outputs: list[Out]


_ZERO: Final = {"available_minor": 0, "held_minor": 0, "version": 0}


def handle(
    balances: Entry | None, operations: Entry | None, op: wl.ApplyLedgerOp, now_ms: int
) -> Step:
    """Apply one operation to the partner's ``balances`` and the order's ``operations``."""
    uid, kind = str(op.uid), op.op
    balances, operations = balances or {}, operations or {}
    if kind in operations:
        done: Entry = operations[kind]
        return Step(None, _rolled_forward(balances, op.currency, done), _answers(op, done))
    if kind in _SETTLING and (
        not isinstance(operations.get(_K.HOLD), dict) or _SETTLING & set(operations)
    ):
        log.error("ledger %s of order %s refused: no hold to settle", kind, uid)
        return Step(None, None, [])
    current = balances.get(op.currency, _ZERO)
    balance = Balance(available_minor=current["available_minor"], held_minor=current["held_minor"])
    try:
        after = _apply(kind, balance, op.amount_minor, op.fee_minor)
    except InsufficientFunds:
        declined: Entry = {"declined": True, "at_ms": now_ms}
        return Step({**operations, kind: declined}, None, _answers(op, declined))
    except InsufficientHeld:
        log.error("ledger %s of order %s refused: held funds too low", kind, uid)
        return Step(None, None, [])
    record = {
        "available_minor": after.available_minor,
        "held_minor": after.held_minor,
        "balance_version": current["version"] + 1,
        "at_ms": now_ms,
    }
    return Step(
        {**operations, kind: record},
        {**balances, op.currency: _balance(record)},
        _answers(op, record),
    )


def _balance(record: Entry) -> Entry:
    return {
        "available_minor": record["available_minor"],
        "held_minor": record["held_minor"],
        "version": record["balance_version"],
    }


def _rolled_forward(balances: Entry, currency: str, record: Entry) -> Entry | None:
    """``balances`` with ``record``'s result if its balance write was lost, else ``None``.

    The record made version ``v``; a balance still at ``v - 1`` never received it (a crash
    between the two writes). Any other version has it, or has moved on from it.
    """
    if record.get("declined"):
        return None
    if balances.get(currency, _ZERO)["version"] != record["balance_version"] - 1:
        return None
    log.warning("balance of %s rolled forward to version %s", currency, record["balance_version"])
    return {**balances, currency: _balance(record)}


def _answers(op: wl.ApplyLedgerOp, record: dict[str, Any]) -> list[Out]:
    """The posting of an applied operation (and a hold's answer), rebuilt from its record."""
    uid, at_ms = str(op.uid), record["at_ms"]
    if record.get("declined"):
        reason = DeclineReason.INSUFFICIENT_FUNDS
        decline = w.DeclineOrder(uid=op.uid, reason=reason)
        return [Out(TO_ORDER, decline, message_id(uid, decline.TYPE, reason), at_ms)]
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
        outputs.append(Out(TO_ORDER, held, message_id(uid, held.TYPE), at_ms))
    return outputs
