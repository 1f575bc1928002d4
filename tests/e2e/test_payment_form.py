"""The payment form as the payer meets it: headless Chromium on a real HTTP server, orders
created by the partner's signed requests, decided by operators, on the real broker and
database. Each step asserts what the payer sees; the verdict must arrive without a reload."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ingest_api.payform.formatting import group_card
from tests.fixtures.browser import LiveApi
from tests.fixtures.system import CURRENCY, PAYER_PAN, System

pytestmark = pytest.mark.e2e

CLOCK = re.compile(r"^\d{1,2}:\d\d(:\d\d)?$")
SHOWN_S = 30.0


@dataclass
class Payer:
    """One browser tab on one order's payment form, and what it sent and was told."""

    page: Any
    uid: str
    confirms: list[str] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    async def screen(self) -> str:
        return str(await self.page.get_attribute("#pay", "data-screen"))

    async def shows(self, screen: str, timeout_s: float = SHOWN_S) -> None:
        """Wait until ``screen`` is the visible one (and the only one)."""
        await self.page.wait_for_selector(f"#pay[data-screen='{screen}']", timeout=timeout_s * 1000)
        await self.page.wait_for_selector(f"#screen-{screen}", state="visible")
        visible = await self.page.locator("section.screen:visible").count()
        assert visible == 1

    async def text(self, selector: str) -> str:
        return str(await self.page.locator(selector).inner_text()).strip()

    async def mark_document(self) -> None:
        await self.page.evaluate("() => { window.__sameDocument = true; }")

    async def same_document(self) -> bool:
        return bool(await self.page.evaluate("() => window.__sameDocument === true"))


@pytest.fixture
async def payer_for(live_api: LiveApi, phone: Any) -> AsyncIterator[Any]:
    opened: list[Payer] = []

    async def open_form(uid: str, *, lang: str | None = None, block_push: bool = False) -> Payer:
        page = await phone.new_page()
        payer = Payer(page=page, uid=uid)
        status_path = f"/v1/pay/{uid}"

        def on_request(request: Any) -> None:
            path = request.url.split("127.0.0.1", 1)[-1].split(":", 1)[-1]
            path = path[path.index("/") :]
            if request.method == "POST" and path == f"{status_path}/confirm":
                payer.confirms.append(path)
            if request.method == "GET" and path == status_path:
                payer.polls.append(path)

        def on_console(message: Any) -> None:
            if "Content Security Policy" in message.text:
                payer.csp_violations.append(message.text)

        page.on("request", on_request)
        page.on("console", on_console)
        if block_push:
            await page.route(f"**{status_path}/events", lambda route: route.abort())
        response = await page.goto(live_api.pay_url(uid, lang))
        assert response is not None
        assert response.status == 200
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        opened.append(payer)
        return payer

    yield open_form
    for payer in opened:
        assert payer.csp_violations == []
        await payer.page.close()


async def create(s: System, direction: str, amount: int, **extra: Any) -> dict[str, Any]:
    body = {
        "direction": direction,
        "amount_minor": amount,
        "currency": CURRENCY,
        "partner_order_id": f"po-{uuid.uuid4()}",
        **extra,
    }
    answer = await s.partner.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def fund(s: System, amount: int) -> None:
    """An approved deposit, so the partner can pay withdrawals."""
    order = await create(s, "deposit", amount)
    await s.row(order["uid"], "new")
    confirmed = await s.api.post(f"/v1/pay/{order['uid']}/confirm", json={})
    assert confirmed.status_code == 200, confirmed.text
    assert (await s.decide("olga", order["uid"], "approve")).status_code == 200
    await s.row(order["uid"], "approved")


async def test_deposit_is_paid_confirmed_once_and_approval_is_pushed(
    live_api: LiveApi, payer_for: Any
):
    s = live_api.system
    order = await create(s, "deposit", 150_000)
    uid = order["uid"]

    payer = await payer_for(uid)  # straight away: the projector may not have written it yet

    await payer.shows("deposit-new")
    assert await payer.text("#h-deposit-new") == "Transfer to a card"
    assert await payer.text("#amount") == "\u20bd1,500.00"
    assert await payer.text("#card-number") == group_card(order["card"]["number"])
    assert await payer.text("#card-bank") == "Test Bank"
    assert await payer.text("#card-holder") == "TEST HOLDER"
    assert CLOCK.match(await payer.text("#screen-deposit-new .countdown"))
    assert await payer.text("#paid") == "I have paid"
    await payer.page.click("#copy")
    await payer.page.wait_for_selector("#copy-status:has-text('Copied')")

    await payer.page.dblclick("#paid")  # an impatient payer: one confirmation goes out
    await payer.shows("waiting")
    assert await payer.text("#h-waiting") == "Checking the payment"
    assert CLOCK.match(await payer.text("#screen-waiting .countdown"))
    await s.row(uid, "processing")
    assert len(payer.confirms) == 1

    await payer.page.reload()  # a reload while waiting shows the waiting screen again
    await payer.shows("waiting")
    await payer.page.wait_for_selector("#pay[data-stream='open']")
    await payer.mark_document()

    decided = await s.decide("olga", uid, "approve")
    assert decided.status_code == 200, decided.text

    await payer.shows("approved")
    assert await payer.same_document()  # pushed, not reloaded
    assert await payer.page.get_attribute("#pay", "data-via") == "push"
    assert payer.polls == []  # the push worked: no polling
    assert await payer.text("#h-approved") == "Payment complete"
    assert len(payer.confirms) == 1

    await payer.page.reload()
    await payer.shows("approved")


async def test_withdrawal_card_is_validated_as_typed_and_rejection_is_pushed_in_russian(
    live_api: LiveApi, payer_for: Any
):
    s = live_api.system
    await fund(s, 1_000_000)
    order = await create(s, "withdrawal", 200_000)
    uid = order["uid"]

    payer = await payer_for(uid, lang="ru")
    page = payer.page

    await payer.shows("withdrawal-new")
    assert await payer.text("#h-withdrawal-new") == "Получение выплаты"
    assert await payer.text("#amount") == "2\u202f000,00\u00a0\u20bd"
    assert await page.is_disabled("#ok")

    await page.click("#card-input")
    await page.keyboard.type("4242424242424241")  # one digit off
    assert await page.input_value("#card-input") == "4242 4242 4242 4241"
    assert await payer.text("#card-hint") == "Проверьте номер: похоже, в нём опечатка"
    assert await page.get_attribute("#card-input", "aria-invalid") == "true"
    assert await page.is_disabled("#ok")

    await page.fill("#card-input", "")
    await page.keyboard.type("4242 42")
    await page.locator("#card-input").blur()
    assert await payer.text("#card-hint") == "Номер карты введён не полностью"

    await page.fill("#card-input", "")
    await page.click("#card-input")
    await page.keyboard.type(PAYER_PAN)
    assert await page.input_value("#card-input") == group_card(PAYER_PAN)
    assert await payer.text("#card-hint") == "Номер выглядит верно"
    assert await page.is_enabled("#ok")

    await page.keyboard.press("Enter")
    await payer.shows("waiting")
    assert await payer.text("#payout-card") == "4242 42\u2022\u2022 \u2022\u2022\u2022\u2022 4242"
    processing = await s.row(uid, "processing")
    assert processing.payer_card_masked == "424242******4242"
    assert len(payer.confirms) == 1
    await page.wait_for_selector("#pay[data-stream='open']")
    await payer.mark_document()

    assert (await s.decide("ivan", uid, "reject")).status_code == 200

    await payer.shows("rejected")
    assert await payer.same_document()
    assert await page.get_attribute("#pay", "data-via") == "push"
    assert await payer.text("#h-rejected") == "Платёж отклонён"

    await page.click("a.lang-switch")  # switch language: the same state, in English
    await payer.shows("rejected")
    assert await payer.text("#h-rejected") == "Payment rejected"
    assert await page.get_attribute("html", "lang") == "en"


async def test_verdict_arrives_by_polling_when_push_is_unavailable(
    live_api: LiveApi, payer_for: Any
):
    s = live_api.system
    order = await create(s, "deposit", 50_000)
    uid = order["uid"]

    payer = await payer_for(uid, block_push=True)

    await payer.shows("deposit-new")
    await payer.page.wait_for_selector("#pay[data-live='poll']")
    await payer.page.click("#paid")
    await payer.shows("waiting")
    await payer.mark_document()

    assert (await s.decide("olga", uid, "fail")).status_code == 200

    await payer.shows("failed")
    assert await payer.same_document()
    assert await payer.page.get_attribute("#pay", "data-via") == "poll"
    assert await payer.text("#h-failed") == "Payment failed"
    assert payer.polls


async def test_unknown_or_malformed_order_gets_a_friendly_not_found_page(
    live_api: LiveApi, phone: Any
):
    page = await phone.new_page()
    for uid, lang, title in (
        ("not-an-order", None, "Payment not found"),
        (str(uuid.uuid4()), "ru", "Платёж не найден"),
    ):
        response = await page.goto(live_api.pay_url(uid, lang))
        assert response is not None
        assert response.status == 404
        assert "text/html" in response.headers["content-type"]
        assert await page.locator("h1").inner_text() == title
        assert await page.get_attribute("#pay", "data-screen") == "not-found"
    await page.close()


async def test_expired_order_shows_the_expiry_screen_and_cannot_be_confirmed(
    live_api: LiveApi, payer_for: Any
):
    s = live_api.system
    order = await create(s, "deposit", 70_000, ttl_s=60)  # the shortest life an order may have
    uid = order["uid"]

    payer = await payer_for(uid)
    await payer.shows("deposit-new")
    await payer.mark_document()

    await payer.shows("expired", timeout_s=90)  # the page's own clock ends the offer
    assert await payer.text("#h-expired") == "Time is up"
    assert await payer.page.is_hidden("#paid")
    await payer.page.wait_for_selector("#pay[data-status='expired']", timeout=30_000)  # pushed
    assert await payer.same_document()
    await s.row(uid, "expired")

    refused = await s.api.post(f"/v1/pay/{uid}/confirm", json={})
    assert refused.status_code == 409
    await payer.page.reload()
    await payer.shows("expired")
    assert payer.confirms == []


async def read_events(lines: Any, count: int) -> list[dict[str, str]]:
    """The next ``count`` events (comments skipped) from an SSE line iterator."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if "data" in current:  # as EventSource: a block without data is no event
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
            continue
        name, _, value = line.partition(":")
        current[name] = value.removeprefix(" ")
    return events


async def test_event_stream_sends_the_status_now_and_each_change(live_api: LiveApi):
    s = live_api.system
    order = await create(s, "withdrawal", 10_000)  # declined: nothing funded
    assert order["status"] == "declined"
    deposit = await create(s, "deposit", 20_000)
    uid = deposit["uid"]
    url = f"{live_api.base_url}/v1/pay/{uid}/events"

    async with httpx.AsyncClient(timeout=30) as http:
        async with http.stream("GET", url) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            [now] = await read_events(lines, 1)
            assert now["event"] == "status"
            first = json.loads(now["data"])
            assert first["status"] == "new"
            assert now["id"] == str(first["version"])
            assert set(first) == {
                "uid",
                "version",
                "direction",
                "status",
                "amount_minor",
                "currency",
                "expires_at_ms",
                "payer_card_masked",
            }  # the public status: no partner, no card ids

            confirmed = await s.api.post(f"/v1/pay/{uid}/confirm", json={})
            assert confirmed.status_code == 200
            [processing] = await read_events(lines, 1)
            assert json.loads(processing["data"])["status"] == "processing"

            assert (await s.decide("olga", uid, "approve")).status_code == 200
            [approved] = await read_events(lines, 1)
            assert json.loads(approved["data"])["status"] == "approved"
            assert int(approved["id"]) > int(processing["id"]) > int(now["id"])
            assert [line async for line in lines if line and not line.startswith(":")] == []

        declined = await http.get(f"{live_api.base_url}/v1/pay/{order['uid']}/events")
        assert declined.status_code == 200  # a final order: its status, then the end
        assert '"status":"declined"' in declined.text
        unknown = await http.get(f"{live_api.base_url}/v1/pay/{uuid.uuid4()}/events")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "order_not_found"
