"""Console sign-in, roles, timeouts, sign-out and password change, with ``AppTest`` against
a real PostgreSQL and the real API over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from ops_console.auth import AUTH_KEY
from ops_console.nav import visible_keys
from ops_console.roles import PAGE_ROLES, page_title
from tests.fixtures.console import CONSOLE_USERS, Console, sign_in
from tests.fixtures.second_factor import code_now
from tests.fixtures.system import PASSWORD

pytestmark = pytest.mark.integration

username_role = dict(CONSOLE_USERS)


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "success") for e in at.get(kind)]
    parts += [m.value for m in at.markdown]
    return "\n".join(str(p) for p in parts)


def test_signed_out_sees_only_sign_in(console_light: Console):
    at = console_light.app().run()
    assert not at.exception
    assert titles(at) == ["Keeper console"]
    for page in PAGE_ROLES:  # whatever address is asked for: the sign-in form
        at.switch_page(f"views/{page}.py").run()
        assert titles(at) == ["Keeper console"], page


def test_wrong_password_is_refused(console_light: Console):
    at = sign_in(console_light.app(), "olga", "not the password at all")
    assert not at.exception
    assert "Wrong username or password." in [e.value for e in at.error]
    assert AUTH_KEY not in at.session_state


def opens(at: AppTest, page: str) -> bool:
    """Whether asking for ``page`` shows it (a page the role is not offered is reachable by
    its address, and must refuse by itself)."""
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, page
    return page_title(page) in titles(at) and "may not open" not in texts(at)


@pytest.mark.parametrize(
    ("username", "landing", "allowed"),
    [
        (
            "olga",
            "Operator queue",
            {
                "queue",
                "disputes",
                "orders",
                "balances",
                "card_monitoring",
                "callbacks",
                "dead_letters",
                "notifications",
                "health",
                "account",
            },
        ),
        ("ann", "Orders", {"orders", "balances", "card_monitoring", "dashboards", "account"}),
        ("adam", "Operator queue", {p for p in PAGE_ROLES if not p.startswith("portal_")}),
    ],
)
def test_each_role_is_offered_its_pages_only(
    console_light: Console, username: str, landing: str, allowed: set[str]
):
    at = sign_in(console_light.app(), username)
    assert not at.exception
    assert titles(at) == [landing]
    assert set(visible_keys(username_role[username])) == allowed
    shown = {page for page in PAGE_ROLES if opens(at, page)}
    assert shown == allowed


def test_a_page_checks_the_role_itself(console_light: Console):
    """A page open when the role changes refuses on the next run (the role is read from
    PostgreSQL every run; the page checks it, not just the navigation)."""
    at = sign_in(console_light.app(), "adam")
    at.switch_page("views/partners.py").run()
    assert titles(at) == ["Partners"]
    console_light.execute("UPDATE console_users SET role = 'analyst' WHERE username = 'adam'")
    at.run()
    assert "Partners" not in titles(at)


def test_idle_session_times_out(console_light: Console):
    at = sign_in(console_light.app(), "olga")
    assert titles(at) == ["Operator queue"]
    past = datetime.now(UTC) - timedelta(hours=2)
    console_light.execute("UPDATE console_sessions SET last_seen_at = :t, created_at = :t", t=past)
    at.run()
    assert titles(at) == ["Keeper console"]
    assert "expired" in texts(at)


def test_absolute_session_timeout(console_light: Console):
    at = sign_in(console_light.app(), "olga")
    console_light.execute(
        "UPDATE console_sessions SET created_at = :c, last_seen_at = now(), expires_at = :e",
        c=datetime.now(UTC) - timedelta(hours=13),
        e=datetime.now(UTC) - timedelta(seconds=1),
    )
    at.run()
    assert titles(at) == ["Keeper console"]


def test_sign_out_closes_the_session(console_light: Console):
    at = sign_in(console_light.app(), "ann")
    at.button(key="sign_out").click().run()
    assert titles(at) == ["Keeper console"]
    assert "signed out" in texts(at)
    assert console_light.sql("SELECT count(*) FROM console_sessions WHERE revoked_at IS NULL") == [
        (0,)
    ]


def test_password_change(console_light: Console):
    at = sign_in(console_light.app(), "ann")
    at.switch_page("views/account.py").run()
    new = "a brand new passphrase"
    at.text_input(key="pw_current").input(PASSWORD)
    at.text_input(key="pw_new").input(new)
    at.text_input(key="pw_again").input("something else entirely")
    at.button[0].click().run()
    assert "The new passwords differ." in [e.value for e in at.error]

    at.text_input(key="pw_current").input("wrong current password")
    at.text_input(key="pw_new").input(new)
    at.text_input(key="pw_again").input(new)
    at.button[0].click().run()
    assert "The current password is wrong." in [e.value for e in at.error]

    at.text_input(key="pw_current").input(PASSWORD)
    at.text_input(key="pw_new").input(new)
    at.text_input(key="pw_again").input(new)
    at.button[0].click().run()
    assert not at.exception
    assert any("Password changed" in s.value for s in at.success)
    at.run()
    assert titles(at) == ["My account"]  # still signed in, on a fresh session

    again = sign_in(console_light.app(), "ann", new)
    assert titles(again) == ["Orders"]
    audit = console_light.sql("SELECT action FROM audit_log WHERE actor = 'ann'")
    assert [a for (a,) in audit] == ["user.password_change"]


# --- the API's side of the same sessions: exact status and code ---------------------------

QUEUE = "/v1/operator/queue"


def api_login(console: Console, username: str, password: str = PASSWORD) -> str:
    answer = httpx.post(
        f"{console.api_url}/v1/auth/login", json={"username": username, "password": password}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    if "challenge" in body:  # an admin: the second step with the current code
        answer = httpx.post(
            f"{console.api_url}/v1/auth/login/second-factor",
            json={"challenge": body["challenge"], "code": code_now(username, console.database_url)},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
    return str(body["token"])


def api_get(console: Console, token: str, path: str = QUEUE) -> httpx.Response:
    return httpx.get(f"{console.api_url}{path}", headers={"Authorization": f"Bearer {token}"})


def assert_expired(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "session_expired"


def test_api_idle_timeout_to_the_second(console_light: Console):
    """Idle 1790 s of the 1800 s limit: still open (and the check moves last_seen_at);
    idle 1801 s: refused."""
    token = api_login(console_light, "olga")
    now = datetime.now(UTC)
    console_light.execute(
        "UPDATE console_sessions SET created_at = :t, last_seen_at = :t",
        t=now - timedelta(seconds=1790),
    )
    assert api_get(console_light, token).status_code == 200
    [(seen,)] = console_light.sql("SELECT last_seen_at FROM console_sessions")
    assert seen >= now
    console_light.execute(
        "UPDATE console_sessions SET created_at = :t, last_seen_at = :t",
        t=datetime.now(UTC) - timedelta(seconds=1801),
    )
    assert_expired(api_get(console_light, token))


def test_api_absolute_timeout_despite_activity(console_light: Console):
    token = api_login(console_light, "olga")
    console_light.execute(
        "UPDATE console_sessions SET created_at = :c, last_seen_at = now(), expires_at = :e",
        c=datetime.now(UTC) - timedelta(hours=13),
        e=datetime.now(UTC) - timedelta(seconds=1),
    )
    assert_expired(api_get(console_light, token))


def test_the_console_never_revives_a_session_the_api_let_lapse(console_light: Console):
    """The idle limit is the session's own (set by the API at sign-in): a console configured
    with a longer one still lands on sign-in, and the API refuses too."""
    at = sign_in(console_light.app(), "olga")
    assert titles(at) == ["Operator queue"]
    token = at.session_state[AUTH_KEY]["token"]
    console_light.execute(
        "UPDATE console_sessions SET idle_s = 60, created_at = :t, last_seen_at = :t",
        t=datetime.now(UTC) - timedelta(seconds=61),
    )
    at.run()  # the console's own limit is 1800 s
    assert titles(at) == ["Keeper console"]
    assert "expired" in texts(at)
    assert_expired(api_get(console_light, token))


def test_a_session_is_bound_to_its_user(console_light: Console):
    ann, olga = api_login(console_light, "ann"), api_login(console_light, "olga")
    assert ann != olga
    refused = api_get(console_light, ann)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert api_get(console_light, olga).status_code == 200
    tampered = api_get(console_light, olga[:-1] + ("A" if olga[-1] != "A" else "B"))
    assert_expired(tampered)
    missing = httpx.get(f"{console_light.api_url}{QUEUE}")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_session"


def test_sign_out_password_change_and_disabling_end_sessions(console_light: Console):
    first, second = api_login(console_light, "olga"), api_login(console_light, "olga")
    adam = api_login(console_light, "adam")
    bye = httpx.post(
        f"{console_light.api_url}/v1/auth/logout", headers={"Authorization": f"Bearer {first}"}
    )
    assert bye.status_code == 204
    assert_expired(api_get(console_light, first))
    assert api_get(console_light, second).status_code == 200

    new = "a brand new passphrase"
    changed = httpx.post(
        f"{console_light.api_url}/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers={"Authorization": f"Bearer {second}"},
    )
    assert changed.status_code == 204
    assert_expired(api_get(console_light, second))  # every session of olga's, this one too
    assert api_get(console_light, adam).status_code == 200  # nobody else's

    third = api_login(console_light, "olga", new)
    console_light.execute("UPDATE console_users SET is_active = false WHERE username = 'olga'")
    assert_expired(api_get(console_light, third))


def test_too_many_attempts_in_the_console(console_light: Console):
    """The console signs in through the API, so the same throttle applies; the person is
    told how long to wait."""
    for _ in range(5):
        at = sign_in(console_light.app(), "olga", "not the password at all")
        assert "Wrong username or password." in [e.value for e in at.error]
    at = sign_in(console_light.app(), "olga")
    assert not at.exception
    [message] = [e.value for e in at.error]
    assert message.startswith("Too many sign-in attempts. Try again in ")
    assert message.endswith(" s.")
    assert AUTH_KEY not in at.session_state
