"""The payment form's pure parts: language choice, formatting, screens, rendering, and the
feed's in-memory fan-out (no broker: ``publish`` is fed directly)."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from domain.orders import Direction, OrderStatus
from ingest_api.models import CardToPay
from ingest_api.payform import page
from ingest_api.payform.feed import FeedFullError, OrderFeed, PayerUpdate, newest
from ingest_api.payform.formatting import format_amount, group_card, short_ref
from ingest_api.payform.i18n import DEFAULT_LANG, MESSAGES, negotiate, parse_accept_language
from ingest_api.payform.state import PageState, Screen, screen_for

UID = uuid.UUID("05b0e357-1111-4222-8333-444455556666")


def update(status: OrderStatus = OrderStatus.NEW, version: int = 2, **extra: object) -> PayerUpdate:
    fields: dict[str, object] = {
        "uid": UID,
        "version": version,
        "direction": Direction.DEPOSIT,
        "status": status,
        "amount_minor": 150_000,
        "currency": "RUB",
        "expires_at_ms": 1_900_000_000_000,
        **extra,
    }
    return PayerUpdate.model_validate(fields)


# --- language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("en-GB,en;q=0.9,ru;q=0.8", "en"),
        ("de-DE,de;q=0.9,ru;q=0.5,en;q=0.4", "ru"),  # the first *supported* wins
        ("en;q=0.3, ru;q=0.8", "ru"),  # by weight, not by position
        ("ru;q=0, en;q=0.1", "en"),  # q=0 means "not this one"
        ("uk-UA", DEFAULT_LANG),
        ("*", DEFAULT_LANG),
        ("", DEFAULT_LANG),
        (None, DEFAULT_LANG),
        ("ru;q=abc,,;;en", "en"),  # garbage is skipped, not refused
    ],
)
def test_language_from_accept_language(header: str | None, expected: str):
    assert negotiate(header) == expected


def test_explicit_choice_beats_cookie_beats_browser():
    assert negotiate("ru-RU", requested="en") == "en"
    assert negotiate("ru-RU", cookie="en") == "en"
    assert negotiate("en-US", requested="ru", cookie="en") == "ru"
    assert negotiate("ru-RU", requested="xx", cookie="yy") == "ru"  # unknown choices ignored
    assert negotiate(None, requested="EN-us") == "en"


def test_weights_sort_best_first_and_keep_order_on_ties():
    assert parse_accept_language("a;q=0.5, b, c;q=0.5, d;q=1") == [
        ("b", 1.0),
        ("d", 1.0),
        ("a", 0.5),
        ("c", 0.5),
    ]


def test_both_languages_have_the_same_texts():
    assert set(MESSAGES["ru"]) == set(MESSAGES["en"])
    for lang, texts in MESSAGES.items():
        assert all(text.strip() for text in texts.values()), lang
    cyrillic = re.compile("[\u0430-\u044f\u0451]", re.IGNORECASE)
    assert cyrillic.search(MESSAGES["ru"]["i_have_paid"])
    assert MESSAGES["ru"]["i_have_paid"] == "Я оплатил"
    assert MESSAGES["en"]["i_have_paid"] == "I have paid"


# --- formatting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "lang", "expected"),
    [
        (150_000, "RUB", "en", "₽1,500.00"),
        (150_000, "RUB", "ru", "1\u202f500,00\u00a0₽"),
        (5, "USD", "en", "$0.05"),
        (123_456_789, "EUR", "ru", "1\u202f234\u202f567,89\u00a0€"),
        (100, "AMD", "en", "1.00\u00a0AMD"),
        (100, "AMD", "ru", "1,00\u00a0AMD"),
        (99_900, "KZT", "en", "₸999.00"),
    ],
)
def test_amounts_read_as_the_payer_expects(amount: int, currency: str, lang: str, expected: str):
    assert format_amount(amount, currency, lang) == expected  # type: ignore[arg-type]


def test_card_numbers_are_grouped_in_fours():
    assert group_card("4111111111111111") == "4111 1111 1111 1111"
    assert group_card("4111-1111 1111-1111") == "4111 1111 1111 1111"
    assert group_card("4000000000000000002") == "4000 0000 0000 0000 002"
    assert group_card("") == ""


def test_masked_payer_card_and_reference():
    assert page.group_card_masked("424242******4242") == "4242 42•• •••• 4242"
    assert page.group_card_masked(None) == ""
    assert short_ref(str(UID)) == "05B0E357"


# --- screens ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "status", "passed", "screen"),
    [
        (Direction.DEPOSIT, OrderStatus.NEW, False, Screen.DEPOSIT_NEW),
        (Direction.WITHDRAWAL, OrderStatus.NEW, False, Screen.WITHDRAWAL_NEW),
        (Direction.DEPOSIT, OrderStatus.NEW, True, Screen.EXPIRED),
        (Direction.DEPOSIT, OrderStatus.PENDING, False, Screen.PENDING),
        (Direction.WITHDRAWAL, OrderStatus.PROCESSING, True, Screen.WAITING),  # never expires
        (Direction.DEPOSIT, OrderStatus.APPROVED, False, Screen.APPROVED),
        (Direction.DEPOSIT, OrderStatus.REJECTED, False, Screen.REJECTED),
        (Direction.DEPOSIT, OrderStatus.FAILED, False, Screen.FAILED),
        (Direction.DEPOSIT, OrderStatus.EXPIRED, False, Screen.EXPIRED),
        (Direction.WITHDRAWAL, OrderStatus.DECLINED, False, Screen.DECLINED),
        (Direction.DEPOSIT, OrderStatus.CANCELLED, False, Screen.CANCELLED),
    ],
)
def test_screen_for_each_status(
    direction: Direction, status: OrderStatus, passed: bool, screen: Screen
):
    assert screen_for(direction, status, deadline_passed=passed) is screen


# --- rendering --------------------------------------------------------------------------


def test_render_escapes_every_value_and_refuses_unknown_names():
    assert page.render("<p>{{ x }}</p>", {"x": '<script>"&'}) == (
        "<p>&lt;script&gt;&quot;&amp;</p>"
    )
    with pytest.raises(page.TemplateError):
        page.render("{{ missing }}", {})


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_deposit_page_shows_one_screen_with_the_card(lang: str):
    card = CardToPay(
        number="4111111111111111", masked="411111******1111", bank="Bank", holder="<Holder>"
    )
    state = PageState(order=update(), screen=Screen.DEPOSIT_NEW, card=card)

    html = page.render_page(state, lang, now_ms=1_800_000_000_000)  # type: ignore[arg-type]

    assert f'<html lang="{lang}">' in html
    assert MESSAGES[lang]["i_have_paid"] in html
    assert "4111 1111 1111 1111" in html
    assert 'data-digits="4111111111111111"' in html
    assert "&lt;Holder&gt;" in html
    assert 'data-expires-ms="1900000000000"' in html
    assert 'data-screen="deposit-new"' in html
    hidden = re.findall(
        r'<section class="screen[^"]*" id="screen-([a-z-]+)"[^>]*?( hidden)?>', html
    )
    shown = [name for name, flag in hidden if not flag]
    assert shown == ["deposit-new"]
    assert len(hidden) == len(Screen)
    assert "<script>" not in html  # nothing inline: strict CSP
    assert "style=" not in html
    assert "{{" not in html


def test_pages_carry_no_card_unless_the_payer_must_pay_to_it():
    state = PageState(order=update(OrderStatus.PROCESSING), screen=Screen.WAITING, card=None)
    html = page.render_page(state, "en", now_ms=0)
    assert 'data-digits=""' in html
    assert "4111" not in html


def test_not_found_page_in_both_languages():
    assert "Payment not found" in page.render_not_found("en")
    assert "Платёж не найден" in page.render_not_found("ru")


def test_assets_are_served_from_the_package_and_versioned():
    assert b"EventSource" in page.asset("pay.js")
    assert b".screen" in page.asset("pay.css")
    with pytest.raises(FileNotFoundError):
        page.asset("../templates/page.html")
    assert re.fullmatch(r"[0-9a-f]{12}", page.asset_version())
    assert "'unsafe-inline'" not in page.CSP
    assert "default-src 'self'" in page.CSP


# --- the feed's fan-out -----------------------------------------------------------------


def test_public_update_never_serialises_the_card_id():
    body = update(card_id="c-1").model_dump()
    assert "card_id" not in body
    assert body["status"] == "new"


def test_newest_takes_the_highest_version():
    old, new = update(version=2), update(OrderStatus.PROCESSING, version=3)
    assert newest(old, None, new) is new
    assert newest(None, None) is None


async def test_watchers_get_the_newest_version_only():
    feed = OrderFeed("unused:9092")
    feed.publish(update(version=2))
    with feed.watching(UID) as watcher:
        first = await watcher.next(0, timeout_s=0.1)
        assert first is not None
        assert first.version == 2  # what the feed already knew

        feed.publish(update(OrderStatus.PROCESSING, version=3))
        feed.publish(update(OrderStatus.APPROVED, version=4))
        feed.publish(update(OrderStatus.PROCESSING, version=3))  # a late duplicate
        latest = await watcher.next(2, timeout_s=0.1)
        assert latest is not None
        assert latest.status is OrderStatus.APPROVED

        assert await watcher.next(4, timeout_s=0.05) is None  # nothing newer: a keep-alive
    assert feed.subscriber_count == 0
    known = feed.latest(UID)
    assert known is not None
    assert known.version == 4


async def test_a_waiting_watcher_wakes_on_publish():
    feed = OrderFeed("unused:9092")
    with feed.watching(UID) as watcher:
        waiting = asyncio.create_task(watcher.next(0, timeout_s=5))
        await asyncio.sleep(0.01)
        feed.publish(update(OrderStatus.REJECTED, version=5))
        got = await asyncio.wait_for(waiting, 1)
    assert got is not None
    assert got.status is OrderStatus.REJECTED


def test_feed_bounds_its_cache_and_its_watchers():
    feed = OrderFeed("unused:9092", cache_size=2, max_subscribers=1)
    uids = [uuid.uuid4() for _ in range(3)]
    for uid in uids:
        feed.publish(update(uid=uid))
    assert feed.latest(uids[0]) is None
    assert feed.latest(uids[2]) is not None
    watcher = feed.open(uids[2])
    with pytest.raises(FeedFullError):
        feed.open(uids[1])
    feed.close(watcher)
    feed.close(feed.open(uids[1]))  # room again
    assert not feed.live  # never started: the page polls
