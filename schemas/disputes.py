"""Disputes on the wire: the late credit an accepted dispute asks its desk for.

A dispute lives in PostgreSQL (it is a low-volume, document-bearing case, not a step of the
hot path); only its money travels: :class:`SettleDispute` goes to the desk that owns the
order (:mod:`schemas.desks`), whose ledger part credits the partner once, by a
``dispute_credit`` transaction that names the dispute (:mod:`domain.disputes`).
"""

from __future__ import annotations

import uuid

from schemas.desks import DeskKey
from schemas.envelope import AmountMinor, Currency, Message, NonNegativeMinor
from schemas.orders import PartnerId
from schemas.registry import register


@register
class SettleDispute(Message):
    """Credit ``amount_minor - fee_minor`` of the disputed deposit ``uid`` to its partner."""

    TYPE = "dispute.settle"

    dispute_id: uuid.UUID
    uid: uuid.UUID
    partner_id: PartnerId
    currency: Currency
    amount_minor: AmountMinor
    fee_minor: NonNegativeMinor
    desk: DeskKey

    def message_key(self) -> str:
        return self.desk

    @property
    def reference(self) -> str:
        return f"dispute:{self.dispute_id}"
