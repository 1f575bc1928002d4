"""The agents' table names and how their entries are keyed.

Shared by the agents that write the tables and the reconciliation that reads their changelogs
(``<app id>-<table>-changelog``), so both agree without the reader importing Faust.
"""

from __future__ import annotations

from typing import Final

#: The partner agent's table: balances and the operations applied per order.
LEDGER_TABLE: Final = "ledger"
BALANCE_PREFIX: Final = "balance/"
OPERATIONS_PREFIX: Final = "op/"

#: The pool agent's table: each card's open orders and turnover, and where each order went.
POOL_TABLE: Final = "card-slots"
CARD_PREFIX: Final = "card/"
PLACEMENT_PREFIX: Final = "order/"


def balance_key(partner_id: str) -> str:
    return BALANCE_PREFIX + partner_id


def operations_key(uid: str) -> str:
    return OPERATIONS_PREFIX + uid


def card_key(pool_id: str, card_id: str) -> str:
    """A card's entry in one pool: a card moved to another pool starts afresh there."""
    return f"{CARD_PREFIX}{pool_id}/{card_id}"


def placement_key(uid: str) -> str:
    return PLACEMENT_PREFIX + uid
