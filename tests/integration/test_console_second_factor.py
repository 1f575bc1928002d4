"""The console's side of two-factor sign-in and forced password reset (``AppTest``, real
PostgreSQL, the real API over HTTP): an admin without a second factor enrols before
anything else, sign-in with a code, a replayed or wrong code, an admin's reset (audited),
a forced new password, and an operator who opts in."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from db import otp
from db.repositories import users
from domain import totp
from ops_console.auth import AUTH_KEY
from tests.fixtures.console import Console, sign_in
from tests.fixtures.second_factor import SECRETS, code_at_step, code_now
from tests.fixtures.system import PASSWORD

pytestmark = pytest.mark.integration


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def password_step(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    at.run()
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(password)
    at.button[0].click()
    return at.run()


def code_step(at: AppTest, code: str) -> AppTest:
    at.text_input(key="sign_in_code").input(code)
    at.button[0].click()
    return at.run()


def test_an_admin_without_a_second_factor_enrols_before_anything_else(console_light: Console):
    with console_light.sessions.begin() as s:
        users.create_user(s, "alma", PASSWORD, "admin", actor="test")
    at = sign_in(console_light.app(), "alma")
    assert not at.exception
    assert titles(at) == ["Finish signing in"]
    assert at.session_state[AUTH_KEY]["username"] == "alma"
    at.switch_page("views/partners.py").run()  # no page opens before
    assert titles(at) == ["Finish signing in"]
    secret = at.text_input(key="totp_key").value
    assert len(secret) == 32
    [(sealed, confirmed)] = console_light.sql(
        "SELECT secret_sealed, confirmed_at FROM console_second_factors f"
        " JOIN console_users u ON u.id = f.user_id WHERE u.username = 'alma'"
    )
    assert secret not in sealed
    assert confirmed is None
    at.run()  # the same pending secret again, not a new one on every run
    assert at.text_input(key="totp_key").value == secret

    at.text_input(key="totp_code").input("000000")
    at.button[0].click().run()
    assert any("not right" in e for e in errors(at))
    at.text_input(key="totp_code").input(otp.code_at(secret, totp.step_of(time.time())))
    at.button[0].click().run()
    assert not at.exception
    assert not errors(at), errors(at)
    [shown] = at.code
    codes = str(shown.value).split("\n")
    assert len(codes) == 10
    assert all(totp.normalise_recovery_code(c) == c for c in codes)
    at.button(key="codes_saved").click().run()
    assert titles(at) == ["Partners"]  # the page asked for at first
    stored = console_light.sql(
        "SELECT code_hash FROM console_recovery_codes c"
        " JOIN console_users u ON u.id = c.user_id WHERE u.username = 'alma'"
    )
    assert len(stored) == 10
    assert all(h.startswith("$argon2id$") for (h,) in stored)
    audit = console_light.sql("SELECT actor, action FROM audit_log WHERE actor = 'alma'")
    assert [tuple(r) for r in audit] == [("alma", "user.second_factor_enrol")]


def test_sign_in_with_a_code_and_no_replay(console_light: Console):
    at = password_step(console_light.app(), "adam")
    assert not at.exception
    assert AUTH_KEY not in at.session_state  # the password alone opened nothing
    at = code_step(at, "000000")
    assert "That code is wrong or was used already. Wait for the next code." in errors(at)
    code = code_now("adam")
    at = code_step(at, code)
    assert titles(at) == ["Operator queue"]
    at.button(key="sign_out").click().run()
    again = code_step(password_step(console_light.app(), "adam"), code)  # replay
    assert AUTH_KEY not in again.session_state
    assert "That code is wrong or was used already. Wait for the next code." in errors(again)
    again.button(key="sign_in_restart").click().run()
    assert any(t.key == "sign_in_password" for t in again.text_input)


def test_an_admin_resets_a_second_factor_and_forces_a_new_password(console_light: Console):
    at = sign_in(console_light.app(), "adam")
    with console_light.sessions.begin() as s:  # olga turns it on herself first
        from tests.fixtures.second_factor import enrol

        enrol(s, "olga")
    olga = sign_in(console_light.app(), "olga")
    assert titles(olga) == ["Operator queue"]

    at.switch_page("views/users.py").run()
    at.selectbox(key="user_pick").select("olga").run()
    at.button(key="reset_second_factor").click().run()
    assert not at.exception
    olga.run()  # her session ended with the reset
    assert titles(olga) == ["Keeper console"]

    at.selectbox(key="user_pick").select("olga").run()
    at.text_input(key="reset_temporary").input("a temporary passphrase")
    [forced] = [b for b in at.button if b.label.startswith("Force a new password")]
    forced.click().run()
    assert not at.exception
    audit = console_light.sql(
        "SELECT actor, action FROM audit_log WHERE action IN "
        "('user.second_factor_reset', 'user.password_reset') ORDER BY id"
    )
    assert [tuple(r) for r in audit] == [
        ("adam", "user.second_factor_reset"),
        ("adam", "user.password_reset"),
    ]

    olga = sign_in(console_light.app(), "olga", "a temporary passphrase")
    assert titles(olga) == ["Finish signing in"]
    olga.switch_page("views/queue.py").run()
    assert titles(olga) == ["Finish signing in"]
    olga.text_input(key="pw_current").input("a temporary passphrase")
    olga.text_input(key="pw_new").input("olga's own passphrase")
    olga.text_input(key="pw_again").input("olga's own passphrase")
    olga.button[0].click().run()
    assert not olga.exception
    assert titles(olga) == ["Operator queue"]
    [(must,)] = console_light.sql(
        "SELECT must_change_password FROM console_users WHERE username = 'olga'"
    )
    assert must is False


def test_an_operator_may_choose_and_opt_in_to_notifications(console_light: Console):
    at = sign_in(console_light.app(), "ivan")
    at.switch_page("views/account.py").run()
    assert titles(at) == ["My account"]
    at.toggle(key="totp_setup").set_value(True).run()
    secret = at.text_input(key="totp_key").value
    SECRETS["ivan"] = secret
    at.text_input(key="totp_code").input(code_at_step("ivan", totp.step_of(time.time())))
    [turn_on] = [b for b in at.button if b.label == "Turn on two-factor sign-in"]
    turn_on.click().run()
    assert len(str(at.code[0].value).split("\n")) == 10
    at.button(key="codes_saved").click().run()
    assert any("On since" in str(m.value) for m in at.markdown)

    at.toggle(key="notify_desktop").set_value(True).run()
    assert console_light.sql(
        "SELECT notify_desktop FROM console_users WHERE username = 'ivan'"
    ) == [(True,)]
    again = sign_in(console_light.app(), "ivan")  # now with a code
    assert titles(again) == ["Operator queue"]
