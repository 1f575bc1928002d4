"""The desk's table and how its entries are keyed.

Shared by the desk that writes the table and the reconciliation that reads its changelog
(``<app id>-desk-changelog``), so both agree without the reader importing Faust.

One table holds everything a desk owns (ADR 0005), so every write of one command goes to one
changelog partition, in the order the desk writes them (:mod:`stream_agents.desk.step`):

- per order: ``placement/<uid>`` (its card), ``op/<uid>`` (its ledger operations), then
  ``order/<uid>`` (the order itself, written last);
- shared by many orders: ``card/<pool>/<card>`` (a card's open orders and turnover for its
  limits), ``turnover/<card>`` (its monitored windows) and ``balance/<partner>`` (a
  partner's balances);
- per desk: ``horizon/<desk>``, the newest instant before which every order the desk forgot
  was opened (ADR 0008): an opening at or before it finds no order only because the order was
  forgotten, and is refused.

A finished order leaves the table after the retention period (``desk.forget``, ADR 0008):
its own entries are deleted (Faust writes a tombstone for each, so compaction removes them).
"""

from __future__ import annotations

from typing import Final

DESK_TABLE: Final = "desk"

ORDER_PREFIX: Final = "order/"
PLACEMENT_PREFIX: Final = "placement/"
OPERATIONS_PREFIX: Final = "op/"
CARD_PREFIX: Final = "card/"
BALANCE_PREFIX: Final = "balance/"
TURNOVER_PREFIX: Final = "turnover/"
#: A bank notification's decision (ADR 0010): an order's own fact, flushed in the first rank.
NOTICE_PREFIX: Final = "notice/"
#: A card's device health (ADR 0010), standalone: the newest report wins.
DEVICE_PREFIX: Final = "device/"
HORIZON_PREFIX: Final = "horizon/"


def order_key(uid: str) -> str:
    return ORDER_PREFIX + uid


def placement_key(uid: str) -> str:
    return PLACEMENT_PREFIX + uid


def operations_key(uid: str) -> str:
    return OPERATIONS_PREFIX + uid


def card_key(pool_id: str, card_id: str) -> str:
    """A card's entry in one pool: a card moved to another pool starts afresh there."""
    return f"{CARD_PREFIX}{pool_id}/{card_id}"


def balance_key(partner_id: str) -> str:
    return BALANCE_PREFIX + partner_id


def turnover_key(card_id: str) -> str:
    return TURNOVER_PREFIX + card_id


def notice_key(notification_id: str) -> str:
    return NOTICE_PREFIX + notification_id


def device_key(pool_id: str, card_id: str) -> str:
    return f"{DEVICE_PREFIX}{pool_id}/{card_id}"


def horizon_key(desk: str | None) -> str:
    return HORIZON_PREFIX + (desk or "-")


def write_rank(key: str, *, deleted: bool = False) -> int:
    """When a key is written in a batch: an order's own facts (placement, operations) first,
    then the entries many orders share (cards, balances), the order itself last.

    A crash loses a suffix of the writes, and the commands are delivered again from the
    batch's start. Whatever survived is then enough to repair the rest: a lost card or
    balance write is rebuilt from the placement or operation before it, and an order lost
    after them asks again and gets the same answer from them.

    Deletions (a forgotten order, ADR 0008) go the other way round: the desk's horizon
    first, then the order, the shared entries (its id taken out of its card's turnover), its
    own facts last. A crash then leaves, at worst, facts of an order that is gone; the
    redelivered ``desk.forget`` deletes them, and no command can reach them meanwhile (an
    unknown order is refused, its opening by the horizon).
    """
    if key.startswith(HORIZON_PREFIX):
        return -2
    if deleted:
        return -1 if key.startswith(ORDER_PREFIX) else 3
    if key.startswith(ORDER_PREFIX):
        return 2
    if key.startswith((CARD_PREFIX, BALANCE_PREFIX, TURNOVER_PREFIX)):
        return 1
    return 0
