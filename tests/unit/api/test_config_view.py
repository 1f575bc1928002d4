"""The API's in-memory configuration: the newest version per partner and card wins."""

from __future__ import annotations

from datetime import date

from domain.cards import CardStatus
from ingest_api.config_view import ConfigView
from schemas.cards import CardConfigured, PartnerConfigured, PartnerStatus
from schemas.registry import encode


def partner(version: int, status: PartnerStatus = PartnerStatus.ACTIVE) -> PartnerConfigured:
    return PartnerConfigured(
        partner_id="shop",
        status=status,
        deposit_fee_bp=250,
        withdrawal_fee_bp=150,
        pool_id="main",
        version=version,
    )


def card(version: int, bank: str) -> CardConfigured:
    return CardConfigured(
        card_id="c1",
        pool_id="main",
        pan_masked="411111******1111",
        currency="RUB",
        status=CardStatus.ACTIVE,
        expires_on=date(2099, 12, 31),
        bank=bank,
        holder="TEST HOLDER",
        daily_limit_minor=10**9,
        monthly_limit_minor=10**10,
        daily_count_limit=1000,
        monthly_count_limit=10000,
        min_order_minor=100,
        max_order_minor=10**8,
        version=version,
    )


def test_newest_version_wins_and_an_old_republish_cannot_roll_back():
    view = ConfigView("unused:9092")
    view.apply(partner(2, PartnerStatus.SUSPENDED))
    view.apply(partner(1))  # an older message read later (a re-publish of version 1)

    found = view.partner("shop")
    assert found is not None
    assert found.status is PartnerStatus.SUSPENDED


def test_records_are_decoded_and_undecodable_or_tombstones_skipped():
    view = ConfigView("unused:9092")
    view._handle(encode(card(1, "Old Bank")))
    view._handle(encode(card(3, "New Bank")))
    view._handle(None)
    view._handle(b"not a message")

    found = view.card("c1")
    assert found is not None
    assert found.bank == "New Bank"
    assert view.partner("shop") is None
    assert view.card("c2") is None
