"""The console session cache: a stated time bound, and forgetting on sign-out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from db.repositories.users import ConsoleUser
from ingest_api.session_cache import SessionCache


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def user(name: str = "olga") -> ConsoleUser:
    return ConsoleUser(
        id=uuid.uuid4(),
        username=name,
        role="operator",
        password_changed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_checked_session_is_answered_from_memory_for_ttl_only():
    clock = FakeClock()
    cache = SessionCache(1.0, clock=clock)
    olga = user()
    cache.put("token-a", olga)

    clock.now_s = 0.99
    assert cache.get("token-a") == olga
    clock.now_s = 1.0
    assert cache.get("token-a") is None  # checked in the database again


def test_sign_out_and_password_change_forget_at_once():
    cache = SessionCache(60.0, clock=FakeClock())
    olga, ivan = user(), user("ivan")
    cache.put("a", olga), cache.put("b", olga), cache.put("c", ivan)

    cache.forget("a")
    assert cache.get("a") is None
    assert cache.get("b") == olga
    cache.forget_user(olga.id)
    assert cache.get("b") is None
    assert cache.get("c") == ivan


def test_zero_ttl_caches_nothing_and_the_size_is_bounded():
    uncached = SessionCache(0.0, clock=FakeClock())
    uncached.put("a", user())
    assert uncached.get("a") is None

    clock = FakeClock()
    small = SessionCache(1.0, max_entries=2, clock=clock)
    for token in ("a", "b", "c"):
        small.put(token, user())
    assert small.get("c") is not None
    assert sum(small.get(t) is not None for t in ("a", "b", "c")) <= 2
