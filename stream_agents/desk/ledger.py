"""The desk's ledger part: the balances of the partners working at the desk.

It keeps two kinds of entry in the desk's table, each small and of bounded size:

- ``balance/<partner>``: the partner's balance per currency, with a version that counts the
  operations applied to it;
- ``op/<uid>``: the operations applied for one order, by kind, each with the balance right
  after it and that balance's version (or the refusal of a hold, remembered so that its
  repeats are refused alike even if the balance has grown since).

An operation's entry is written before the balance (:mod:`stream_agents.desk.step` orders a
batch's writes), both to the same changelog partition, and the batch is acknowledged only
once the broker has both (:mod:`stream_agents.confirmed`), so a crash can lose the balance
write but never the
entry before it; the operation is then delivered again, finds its entry, and rolls the
balance forward from it (the entry says which version it made). Keeping every order's
operations in one partner entry instead would make each write carry the partner's whole
history, past Kafka's message size after a few thousand orders.

A repeated operation re-publishes its ``ledger.posted`` (same id, same balance) and, for a
hold, the answer to the order part again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
from schemas import disputes as wd
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

#: Operations after which a deposit may never be credited late: it was credited already, or
#: it is a withdrawal (whose money is held).
_NO_LATE_CREDIT: Final = frozenset({_K.DEPOSIT_CREDIT, _K.HOLD})


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
    }[_K.DEPOSIT_CREDIT if kind is _K.DISPUTE_CREDIT else kind]  # a late credit is a credit
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
class Funds:
    """A partner's balance in one currency, and how many operations made it (``version``)."""

    available_minor: int
    held_minor: int
    version: int

    @property
    def balance(self) -> Balance:
        return Balance(available_minor=self.available_minor, held_minor=self.held_minor)

    def to_json(self) -> Entry:
        return {
            "available_minor": self.available_minor,
            "held_minor": self.held_minor,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: Entry) -> Funds:
        return cls(data["available_minor"], data["held_minor"], data["version"])


NO_FUNDS: Final = Funds(0, 0, 0)


@dataclass(frozen=True, slots=True)
class Applied:
    """What one operation of an order did, and when: the partner's funds right after it, or
    ``None`` for a hold refused for want of funds (remembered, so that its repeats are refused
    alike even if the balance has grown since)."""

    at_ms: int
    after: Funds | None

    def to_json(self) -> Entry:
        if self.after is None:
            return {"declined": True, "at_ms": self.at_ms}
        return {
            "available_minor": self.after.available_minor,
            "held_minor": self.after.held_minor,
            "balance_version": self.after.version,
            "at_ms": self.at_ms,
        }

    @classmethod
    def from_json(cls, data: Entry) -> Applied:
        if data.get("declined"):
            return cls(data["at_ms"], None)
        after = Funds(data["available_minor"], data["held_minor"], data["balance_version"])
        return cls(data["at_ms"], after)


def funds_by_currency(entry: Entry | None) -> dict[str, Funds]:
    """A ``balance/<partner>`` entry: the partner's funds per currency."""
    return {currency: Funds.from_json(funds) for currency, funds in (entry or {}).items()}


def applied_by_kind(entry: Entry | None) -> dict[PostingKind, Applied]:
    """An ``op/<uid>`` entry: the operations applied for one order, by kind."""
    return {PostingKind(kind): Applied.from_json(done) for kind, done in (entry or {}).items()}


@dataclass(frozen=True, slots=True)
class Step:
    """The result of one operation: the entries to write (``None``: unchanged), the order's
    operations first, then the partner's balances; and what to send."""

    operations: Entry | None
    balances: Entry | None
    outputs: list[Out]


def handle(
    balances: Entry | None, operations: Entry | None, op: wl.ApplyLedgerOp, now_ms: int
) -> Step:
    """Apply one operation to the partner's ``balances`` and the order's ``operations``
    (table entries, JSON); the logic works on :class:`Funds` and :class:`Applied`."""
    uid, kind = str(op.uid), op.op
    funds, done = funds_by_currency(balances), applied_by_kind(operations)
    if kind in done:
        rolled = _rolled_forward(funds, op.currency, done[kind])
        return Step(None, None if rolled is None else _json(rolled), _answers(op, done[kind]))
    if kind in _SETTLING and (_hold_of(done) is None or _SETTLING & set(done)):
        log.error("ledger %s of order %s refused: no hold to settle", kind, uid)
        return Step(None, None, [])
    if kind is _K.DISPUTE_CREDIT and _NO_LATE_CREDIT & set(done):
        log.error("late credit of order %s (%s) refused: it has %s", uid, op.reference, set(done))
        return Step(None, None, [])
    current = funds.get(op.currency, NO_FUNDS)
    try:
        after = _apply(kind, current.balance, op.amount_minor, op.fee_minor)
    except InsufficientFunds:
        declined = Applied(now_ms, None)
        return Step(_json({**done, kind: declined}), None, _answers(op, declined))
    except InsufficientHeld:
        log.error("ledger %s of order %s refused: held funds too low", kind, uid)
        return Step(None, None, [])
    applied = Applied(now_ms, Funds(after.available_minor, after.held_minor, current.version + 1))
    return Step(
        _json({**done, kind: applied}),
        _json({**funds, op.currency: applied.after}),
        _answers(op, applied),
    )


def _hold_of(done: dict[PostingKind, Applied]) -> Funds | None:
    """The funds after the order's hold, if it was held (not refused)."""
    hold_applied = done.get(_K.HOLD)
    return None if hold_applied is None else hold_applied.after


def _json(values: Mapping[str, Funds | None] | Mapping[PostingKind, Applied]) -> Entry:
    return {str(key): value.to_json() for key, value in values.items() if value is not None}


def _rolled_forward(
    funds: dict[str, Funds], currency: str, done: Applied
) -> dict[str, Funds] | None:
    """``funds`` with ``done``'s result if its balance write was lost, else ``None``.

    The operation made version ``v``; funds still at ``v - 1`` never received it (a crash
    between the two writes). Any other version has it, or has moved on from it.
    """
    if done.after is None or funds.get(currency, NO_FUNDS).version != done.after.version - 1:
        return None
    log.warning("balance of %s rolled forward to version %s", currency, done.after.version)
    return {**funds, currency: done.after}


def _answers(op: wl.ApplyLedgerOp, done: Applied) -> list[Out]:
    """The posting of an applied operation (and a hold's answer), rebuilt from its record."""
    uid, at_ms, after = str(op.uid), done.at_ms, done.after
    if after is None:
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
        available_minor=after.available_minor,
        held_minor=after.held_minor,
        balance_version=after.version,
        reference=op.reference,
    )
    outputs = [Out(LEDGER_EVENTS.name, posted, message_id(uid, posted.TYPE, op.op), at_ms)]
    if op.op is _K.HOLD:
        held = w.MarkFundsHeld(uid=op.uid)
        outputs.append(Out(TO_ORDER, held, message_id(uid, held.TYPE), at_ms))
    return outputs


def settlement(settle: wd.SettleDispute) -> wl.ApplyLedgerOp:
    """The ledger operation an accepted dispute asks for: its deposit credited, once."""
    return wl.ApplyLedgerOp(
        partner_id=settle.partner_id,
        uid=settle.uid,
        currency=settle.currency,
        op=_K.DISPUTE_CREDIT,
        amount_minor=settle.amount_minor,
        fee_minor=settle.fee_minor,
        reference=settle.reference,
    )
