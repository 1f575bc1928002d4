"""The load generator: full order lives through the HTTP API, offered open-loop.

Life *i* is due at *t0 + i / rate* whatever the earlier ones are doing, and its latencies run
from that due time, so a stalled server is charged for every life queued behind the stall
(no coordinated omission). A life is what a partner, a payer and an operator do:

1. the partner creates a deposit (``POST /v1/orders``, signed with the real
   :func:`ingest_api.signing.signed_headers`); a ``202`` is followed up with ``GET`` until
   the order has its card;
2. the payer says "I have paid" (``POST /v1/pay/<uid>/confirm``);
3. an operator approves (``POST /v1/operator/orders/<uid>/decision``).

Only the HTTP API is used, so the generator drives Keeper and the null API (baseline (c))
alike. Requests go over aiohttp, cheaper per request than httpx, so the generator is less
in the way of what it measures.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from ingest_api.signing import signed_headers

T = TypeVar("T")

CURRENCY = "RUB"
#: What the API answers when a call was already done (a retry after a timeout went through).
DONE_BEFORE = 409


@dataclass
class Desk:
    """A partner's key, fresh for each phase (its own partner, pool and cards)."""

    partner: str
    key_id: str
    secret: bytes


@dataclass
class LifeStats:
    """What the lives of one phase met on the way (latencies in ms from the due time)."""

    create_ms: list[float] = field(default_factory=list)
    life_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)
    timeouts: int = 0

    def count(self, table: dict[str, int], what: str) -> None:
        table[what] = table.get(what, 0) + 1


class Driver:
    """One HTTP session with the operators signed in; lives for a given desk."""

    def __init__(
        self, api_url: str, operators: tuple[str, ...], password: str, timeout_s: float
    ) -> None:
        self.api_url = api_url
        self.operators = operators
        self.password = password
        self.timeout_s = timeout_s
        self.tokens: list[str] = []
        self.session: aiohttp.ClientSession | None = None
        self.amounts = 0

    async def __aenter__(self) -> Driver:
        self.session = aiohttp.ClientSession(
            base_url=self.api_url,
            connector=aiohttp.TCPConnector(limit=4000),
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
        )
        for username in self.operators:
            async with self.session.post(
                "/v1/auth/login", json={"username": username, "password": self.password}
            ) as answer:
                answer.raise_for_status()
                self.tokens.append((await answer.json())["token"])
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.session is not None
        await self.session.close()

    def amount(self) -> int:
        # Distinct amounts: no two open deposits may share a card and an amount.
        self.amounts += 1
        return 10_000 + self.amounts

    async def create(self, desk: Desk, partner_order_id: str) -> tuple[int, dict[str, Any]]:
        assert self.session is not None
        body = json.dumps(
            {
                "direction": "deposit",
                "amount_minor": self.amount(),
                "currency": CURRENCY,
                "partner_order_id": partner_order_id,
            },
            separators=(",", ":"),
        ).encode()
        headers = signed_headers(desk.key_id, desk.secret, "POST", "/v1/orders", "", body)
        headers["Content-Type"] = "application/json"
        async with self.session.post("/v1/orders", data=body, headers=headers) as answer:
            return answer.status, await answer.json(content_type=None)

    async def get(self, desk: Desk, uid: str) -> tuple[int, dict[str, Any]]:
        assert self.session is not None
        path = f"/v1/orders/{uid}"
        headers = signed_headers(desk.key_id, desk.secret, "GET", path, "", b"")
        async with self.session.get(path, headers=headers) as answer:
            return answer.status, await answer.json(content_type=None)

    async def confirm(self, uid: str) -> int:
        assert self.session is not None
        async with self.session.post(f"/v1/pay/{uid}/confirm", json={}) as answer:
            await answer.read()
            return answer.status

    async def decide(self, uid: str, index: int) -> int:
        assert self.session is not None
        token = self.tokens[index % len(self.tokens)]
        async with self.session.post(
            f"/v1/operator/orders/{uid}/decision",
            json={"verdict": "approve"},
            headers={"Authorization": f"Bearer {token}"},
        ) as answer:
            await answer.read()
            return answer.status

    async def life(self, desk: Desk, tag: str, i: int, due: float, stats: LifeStats) -> bool:
        """One whole life; True once the operator's approval was answered."""
        loop = asyncio.get_running_loop()
        try:
            status, body = await self.create(desk, f"{tag}-{i}")
        except TimeoutError:
            stats.timeouts += 1
            status, body = 0, {}
        except (aiohttp.ClientError, ValueError):
            status, body = 0, {}
        stats.create_ms.append((loop.time() - due) * 1000)
        stats.count(stats.statuses, str(status))
        if status not in (201, 202):
            return False
        uid = body["uid"]
        if (status == 202 or body.get("status") != "new") and not await self.settled(desk, uid):
            stats.count(stats.retried, "create:never-settled")
            return False
        if await self.retry(lambda: self.confirm(uid), "confirm", stats) < 0:
            return False
        if await self.retry(lambda: self.decide(uid, i), "decide", stats) < 0:
            return False
        stats.life_ms.append((loop.time() - due) * 1000)
        return True

    async def settled(self, desk: Desk, uid: str) -> bool:
        for _ in range(120):
            await asyncio.sleep(0.25)
            try:
                got, order = await self.get(desk, uid)
            except (aiohttp.ClientError, TimeoutError):
                continue
            if got == 200 and order.get("status") not in (None, "pending"):
                return True
        return False

    async def retry(
        self, call: Callable[[], Awaitable[int]], what: str, stats: LifeStats, tries: int = 40
    ) -> int:
        """The call until it is answered 200 (or 409: an earlier attempt went through)."""
        for _ in range(tries):
            try:
                status = await call()
            except TimeoutError:
                stats.timeouts += 1
                status = 0
            except aiohttp.ClientError:
                status = 0
            if status in (200, DONE_BEFORE):
                return status
            stats.count(stats.retried, f"{what}:{status}")
            await asyncio.sleep(0.25)
        return -1


async def open_loop(
    rate: float, duration_s: float, job: Callable[[int, float], Coroutine[Any, Any, T]]
) -> tuple[list[T], float]:
    """Start ``job(i, due)`` at ``due = t0 + i / rate``; (results, worst start lag in ms)."""
    loop = asyncio.get_running_loop()
    count = max(1, int(rate * duration_s))
    t0 = loop.time() + 0.05
    tasks: list[asyncio.Task[T]] = []
    worst_lag = 0.0
    for i in range(count):
        due = t0 + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            worst_lag = max(worst_lag, -delay)
        tasks.append(asyncio.create_task(job(i, due)))
    return list(await asyncio.gather(*tasks)), worst_lag * 1000
