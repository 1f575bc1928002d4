"""Desks: the keyed step that owns an order, and the key of ``order-commands``.

Everything one decision about an order needs lives in one keyed step (ADR 0005): the order,
the cards of its pool under the unique-amount rule, the partner's balance it holds or credits,
and the cards' turnover. That step is the order's *desk*, and its name is the Kafka key of
every command about the order, so they all reach one partition, in order, and one worker.

- A partner with a card pool works at its pool's desk, ``pool:<pool id>``: its deposits need
  the pool's cards, and its balance lives there too, beside the deposits that credit it.
- A partner without a pool works at its own desk, ``partner:<partner id>``: it can take no
  deposit (no card), so its balance there never grows.

An order keeps the desk it was opened at for its whole life (its events carry it), whatever
happens to its partner's pool afterwards.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

POOL_DESK: Final = "pool:"
PARTNER_DESK: Final = "partner:"

#: A desk's name, as commands and order snapshots carry it.
DeskKey = Annotated[str, Field(pattern=r"^(pool|partner):[a-z0-9][a-z0-9_-]{0,62}$")]


def pool_desk(pool_id: str) -> str:
    return POOL_DESK + pool_id


def partner_desk(partner_id: str, pool_id: str | None) -> str:
    """The desk where ``partner_id`` works while its card pool is ``pool_id``."""
    return pool_desk(pool_id) if pool_id else PARTNER_DESK + partner_id
