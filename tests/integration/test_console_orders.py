"""The orders and balances pages with ``AppTest`` against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures.console import (
    CARD_PAN,
    PAYER_MASKED,
    PAYER_PAN,
    Console,
    seed_history,
    sign_in,
)

pytestmark = pytest.mark.integration


def open_page(console: Console, username: str, page: str) -> AppTest:
    at = sign_in(console.app(), username)
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def frames(at: AppTest) -> list[pd.DataFrame]:
    return [element.value for element in at.get("dataframe")]


def listed(at: AppTest, column: str = "partner_order_id") -> list[str]:
    return sorted(frames(at)[0][column])


@pytest.fixture
def history(console_light: Console) -> dict[str, str]:
    return seed_history(console_light, datetime.now(UTC) - timedelta(hours=3))


def test_orders_filter_by_status_direction_card_and_search(
    console_light: Console, history: dict[str, str]
):
    at = open_page(console_light, "ann", "orders")
    assert listed(at) == ["inv-a1", "inv-a2", "inv-a3", "inv-a4", "inv-a5"]

    at.multiselect(key="f_status").select("approved").run()
    assert listed(at) == ["inv-a1", "inv-a2"]

    at.multiselect(key="f_status").unselect("approved").run()
    at.selectbox(key="f_direction").select("withdrawal").run()
    assert listed(at) == ["inv-a5"]
    assert list(frames(at)[0]["payer_card_masked"]) == ["424242******4242"]

    at.selectbox(key="f_direction").select("any").run()
    at.text_input(key="f_card").input(CARD_PAN[-4:]).run()
    assert listed(at) == ["inv-a1", "inv-a2", "inv-a3", "inv-a4"]

    at.text_input(key="f_card").input("").run()
    at.text_input(key="f_search").input("inv-a3").run()
    assert listed(at) == ["inv-a3"]

    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    at.date_input(key="f_from").set_value(tomorrow).run()
    assert "'Created until' is before 'Created from'." in [e.value for e in at.error]
    at.date_input(key="f_to").set_value(tomorrow).run()
    assert listed(at) == []


def test_full_card_numbers_are_never_shown(console_light: Console, history: dict[str, str]):
    at = open_page(console_light, "olga", "orders")
    cards = set(frames(at)[0]["card"].dropna())
    assert cards == {"411111******1111"}
    assert CARD_PAN not in frames(at)[0].to_csv()


def test_order_detail_and_history(console_light: Console, history: dict[str, str]):
    at = open_page(console_light, "ann", "orders")
    at.selectbox(key="orders_pick").select(history["a3"]).run()
    assert not at.exception
    [events] = [d for d in frames(at) if "seq" in d.columns]
    assert list(events["type"]) == [
        "order.opened",
        "order.created",
        "order.payment_confirmed",
        "order.rejected",
    ]
    assert list(events["operator"].dropna()) == ["olga"]
    assert any("rejected by olga at" in i.value for i in at.info)
    assert not [b for b in at.button if b.label in ("Approve", "Reject", "Mark failed")]


def test_an_analyst_gets_no_decision_form(console_light: Console, history: dict[str, str]):
    at = open_page(console_light, "ann", "orders")
    at.selectbox(key="orders_pick").select(history["a5"]).run()  # processing
    assert not [b for b in at.button if b.label in ("Approve", "Reject", "Mark failed")]
    operator = open_page(console_light, "olga", "orders")
    operator.selectbox(key="orders_pick").select(history["a5"]).run()
    assert [b.label for b in operator.button if b.label in ("Approve", "Reject", "Mark failed")]


def test_balances_and_postings(console_light: Console, history: dict[str, str]):
    at = open_page(console_light, "olga", "balances")
    balances, system, postings = frames(at)
    assert list(balances["available"]) == ["1,462.50 RUB"]  # 975.00 + 487.50
    assert dict(zip(system["account"], system["balance"], strict=True)) == {
        "external:settlement": "-1,500.00 RUB",
        "system:fees": "37.50 RUB",
    }
    assert len(postings) == 6

    at.selectbox(key="postings_partner").select("shop").run()
    postings = frames(at)[2]
    assert set(postings["account"]) == {"partner:shop:available"}
    assert at.download_button(key="postings_csv")


def test_operator_reveals_a_withdrawal_card_once_and_audited(
    console_light: Console, history: dict[str, str]
):
    analyst = open_page(console_light, "ann", "orders")
    analyst.selectbox(key="orders_pick").select(history["a5"]).run()
    assert not [b for b in analyst.button if "full card" in b.label]

    at = open_page(console_light, "olga", "orders")
    at.selectbox(key="orders_pick").select(history["a5"]).run()
    assert PAYER_PAN not in " ".join(c.value for c in at.code)
    next(b for b in at.button if "full card" in b.label).click().run()
    assert [c.value for c in at.code] == ["4242 4242 4242 4242"]
    at.run()
    assert not at.code, "shown for one run only"
    [(actor, entity_id, after)] = console_light.sql(
        "SELECT actor, entity_id, after FROM audit_log WHERE action = 'order.reveal_payer_card'"
    )
    assert (actor, entity_id, after) == ("olga", history["a5"], {"payer_card_masked": PAYER_MASKED})
