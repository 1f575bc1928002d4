"""Who is signing in, for the sign-in throttle: the scopes of one attempt and the 429.

An attempt is counted in two scopes, its username (known or not, so a lock says nothing
about which names exist) and its client address (so spraying many usernames from one
place is slowed too). The address is the TCP peer's, unless the peer is one of
``KEEPER_TRUSTED_PROXIES``: then it is the last ``X-Forwarded-For`` entry, the one that
proxy added. IPv6 addresses count per /64, what one host usually gets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse

from db.repositories.errors import InvalidInput
from db.repositories.login_throttle import ADDRESS, USER, Scope
from db.repositories.users import normalise_username
from domain.login_throttle import Policy
from ingest_api.errors import error_response
from ingest_api.settings import ApiSettings

FORWARDED_FOR = "x-forwarded-for"
UNKNOWN_ADDRESS = "unknown"


class TooManyAttemptsError(Exception):
    """Sign-in refused while a scope is locked; answered ``429`` with ``Retry-After``."""

    def __init__(self, wait_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(wait_s))
        super().__init__(f"too many failed sign-ins; try again in {self.retry_after_s} s")


async def too_many_attempts(_: Request, exc: Exception) -> JSONResponse:
    """The exception handler: ``429 too_many_attempts`` with ``Retry-After`` (seconds)."""
    assert isinstance(exc, TooManyAttemptsError)
    response = error_response(429, "too_many_attempts", str(exc))
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _canonical(host: str | None) -> str:
    try:
        address = ipaddress.ip_address((host or "").strip())
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def client_address(request: Request, trusted_proxies: frozenset[str]) -> str:
    """The address an attempt is counted against (see the module's docstring)."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.get(FORWARDED_FOR)
    if forwarded and _canonical(peer) in trusted_proxies:
        return _canonical(forwarded.split(",")[-1])
    return _canonical(peer)


def trusted(settings: ApiSettings) -> frozenset[str]:
    return frozenset(_canonical(p) for p in settings.trusted_proxies.split(",") if p.strip())


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sign-in attempt: its scopes, and who to name in the audit log."""

    scopes: tuple[Scope, ...]
    actor: str
    address: str

    @property
    def user_scope(self) -> tuple[Scope, ...]:
        return tuple(s for s in self.scopes if s.kind == USER)

    @property
    def address_scope(self) -> tuple[Scope, ...]:
        return tuple(s for s in self.scopes if s.kind == ADDRESS)


def _user_key(username: str) -> tuple[str, str]:
    """``(key, actor)``: the normalised name twice, or for a name no user can have a digest
    of it (bounded, printable) and ``anonymous``."""
    try:
        name = normalise_username(username)
    except InvalidInput:
        digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"invalid:{digest}", "anonymous"
    return name, name


def attempt_of(request: Request, settings: ApiSettings, username: str) -> Attempt:
    key, actor = _user_key(username)
    address = client_address(request, trusted(settings))
    user_policy = Policy(
        settings.login_max_failures_user,
        settings.login_window_s,
        settings.login_lock_base_s,
        settings.login_lock_max_s,
    )
    address_policy = Policy(
        settings.login_max_failures_address,
        settings.login_window_s,
        settings.login_lock_base_s,
        settings.login_lock_max_s,
    )
    scopes = (Scope(USER, key, user_policy), Scope(ADDRESS, address, address_policy))
    return Attempt(scopes, actor, address)
