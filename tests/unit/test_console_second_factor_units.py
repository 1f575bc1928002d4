"""The console's pure parts of sign-in and notifications: which roles must have a second
factor, the QR code, what a notification says, and the API client's two steps."""

from __future__ import annotations

import json

import httpx
import pytest

from db.repositories.second_factor import required_roles
from ops_console import notify
from ops_console.api_client import Challenge, KeeperApi, SignedIn
from ops_console.credentials import qr_png

UID = "1a2b3c4d-5e6f-4711-8899-aabbccddeeff"


def test_admin_always_must_and_unknown_roles_are_refused():
    assert required_roles("") == frozenset({"admin"})
    assert required_roles("operator, analyst") == frozenset({"admin", "operator", "analyst"})
    with pytest.raises(ValueError, match="unknown role"):
        required_roles("admin,operater")


def test_the_qr_code_is_a_png_drawn_here():
    png = qr_png("otpauth://totp/Keeper:olga?secret=ABC&issuer=Keeper")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_notification_names_the_short_id_only():
    [note] = notify.texts([UID])
    assert note == {"tag": "keeper-order-1a2b3c4d", "body": "Order 1a2b3c4d"}
    script = notify.script([UID])
    assert "Order 1a2b3c4d" in script
    assert UID not in script  # not even the full uid
    assert 'document.visibilityState === "visible"' in script  # in front: chime and toast


def test_an_unmatched_bank_notification_is_named_by_its_short_id_only():
    [note] = notify.unmatched_texts([UID])
    assert note == {"tag": "keeper-notice-1a2b3c4d", "body": "Bank notification 1a2b3c4d"}
    script = notify.script([], title=notify.UNMATCHED_TITLE, notes=[note])
    assert "Bank notification 1a2b3c4d" in script
    assert UID not in script
    assert "matched no order" in script


def test_the_client_signs_in_in_two_steps():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/auth/login":
            return httpx.Response(
                200, json={"second_factor": "totp", "challenge": "ch4", "expires_at": "x"}
            )
        return httpx.Response(
            200,
            json={"token": "t0k", "username": "adam", "role": "admin", "expires_at": "y"},
        )

    api = KeeperApi("http://api", transport=httpx.MockTransport(answer))
    first = api.login("adam", "pw", client_address="192.0.2.8")
    assert first == Challenge("ch4", "x")
    signed = api.login_second_factor("ch4", "123456", client_address="192.0.2.8")
    assert signed == SignedIn("t0k", "adam", "admin", "y")
    assert seen[1].url.path == "/v1/auth/login/second-factor"
    assert json.loads(seen[1].content) == {"challenge": "ch4", "code": "123456"}
    assert seen[1].headers["X-Forwarded-For"] == "192.0.2.8"
