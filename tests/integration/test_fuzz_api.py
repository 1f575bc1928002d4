"""Schemathesis against the API's own OpenAPI schema: signed, unsigned and as an operator.

The schema is the one the app serves (``GET /openapi.json`` of the ``system`` fixture's
app). Schemathesis generates each operation's requests, valid ones and invalid ones; they
are sent in-process (httpx over ``ASGITransport``, on the test's event loop, where the
app's Kafka clients live) and every answer is judged:

* never a server error (5xx);
* the status is documented for the operation, and the body matches the documented schema
  and content type;
* a JSON error answer carries ``error.code``;
* unsigned, a partner endpoint answers ``401`` with an authentication code; signed as the
  partner (each request with a fresh nonce), it is never refused authentication.

Hypothesis runs in a worker thread (it is synchronous) and hands each request to the
event loop. Sizes follow ``KEEPER_FAULT_SCALE``: ``ci`` (default) runs a few dozen
examples per operation and mode, derandomised; ``full`` runs many more.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from db.repositories import sessions as sessions_repo
from ingest_api.client import KeeperAuth
from tests.fixtures.fuzz_pipeline import AUTH_CODES, error_code
from tests.fixtures.system import CURRENCY, PARTNER, System

FULL = os.environ.get("KEEPER_FAULT_SCALE", "ci") == "full"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(3600 if FULL else 300),
    # Hypothesis notes a change of the global `random` state while it draws; here that is
    # the event loop's thread (Kafka clients pick nodes at random), not the strategies.
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

MAX_EXAMPLES = 300 if FULL else 25
#: Operations that verify a password (argon2id, 64 MiB: about a second on a busy core).
PASSWORD_CHECKING = frozenset({"POST /v1/auth/login", "POST /v1/auth/password"})
SLOW_MAX_EXAMPLES = 100 if FULL else 8
BASE_URL = "http://api"
#: Seconds one request may take: a create waits up to ``create_wait_s`` (10 s) for the agent.
REQUEST_TIMEOUT_S = 30.0

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

Expect = Callable[[Any, httpx.Response], None]


@dataclass
class Persona:
    """Who sends the generated requests, and what each answer must also satisfy."""

    name: str
    client: httpx.AsyncClient
    expect: Expect
    #: Called (on the loop) before each request: extra headers, e.g. a bearer token.
    headers: Callable[[Any], Any] | None = None
    #: How often each status was answered, e.g. to see that signed requests got through.
    statuses: Counter[int] = field(default_factory=Counter)


async def served_schema(system: System) -> Any:
    answer = await system.api.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    return schemathesis.openapi.from_dict(answer.json())


def operations(schema: Any, tag: str | None = None) -> list[Any]:
    found = [result.ok() for result in schema.get_all_operations()]
    if tag is None:
        return found
    return [op for op in found if tag in op.definition.raw.get("tags", [])]


def wire_request(case: Any) -> dict[str, Any]:
    """The generated request as bytes on the wire: ``requests`` encodes it as Schemathesis
    would send it (query, cookies, JSON or raw body), httpx then sends exactly that."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
    ).prepare()
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    body = prepared.body
    if isinstance(body, str):
        body = body.encode()
    return {"method": prepared.method, "url": prepared.url, "headers": headers, "content": body}


def describe(request: dict[str, Any], answer: httpx.Response) -> str:
    body = request["content"]
    shown = body[:300] if isinstance(body, bytes) else body
    return (
        f"{request['method']} {request['url']} body={shown!r}\n"
        f"  -> {answer.status_code} {answer.headers.get('content-type')} {answer.text[:500]!r}"
    )


def is_json(answer: httpx.Response) -> bool:
    return answer.headers.get("content-type", "").startswith("application/json")


def expect_error_code(_: Any, answer: httpx.Response) -> None:
    """Every JSON refusal speaks the one error shape."""
    if answer.status_code >= 400 and is_json(answer):
        assert error_code(answer), "a JSON error answer without error.code"


def expect_unsigned_refused(case: Any, answer: httpx.Response) -> None:
    """No signature: authentication fails, whatever else the request holds."""
    expect_error_code(case, answer)
    if answer.status_code == 400 and error_code(answer) == "malformed_json":
        # FastAPI parses a JSON body before any dependency runs, so a body that is not JSON
        # at all is refused before the signature is looked at. Nothing is done either way.
        return
    assert answer.status_code == 401, "an unsigned partner request was not refused with 401"
    assert error_code(answer) in AUTH_CODES, "401 without an authentication error code"


def expect_signed_accepted(case: Any, answer: httpx.Response) -> None:
    """A correctly signed request passes authentication, however odd its path or query."""
    expect_error_code(case, answer)
    assert answer.status_code != 401, "a correctly signed request failed authentication"


async def send(persona: Persona, case: Any, request: dict[str, Any]) -> httpx.Response:
    if persona.headers is not None:
        extra = await persona.headers(case)
        names = {name.lower() for name in extra}
        kept = {k: v for k, v in request["headers"].items() if k.lower() not in names}
        request["headers"] = {**kept, **extra}
    answer = await persona.client.request(
        request["method"],
        request["url"],
        headers=request["headers"],
        content=request["content"],
        timeout=REQUEST_TIMEOUT_S,
    )
    persona.statuses[answer.status_code] += 1
    return answer


def fuzz_operation(
    loop: asyncio.AbstractEventLoop,
    persona: Persona,
    operation: Any,
    mode: GenerationMode,
    path_parameters: dict[str, Any] | None = None,
) -> str | None:
    """Runs in a worker thread: Hypothesis generates, the loop sends; a failure's report."""

    @settings(
        max_examples=SLOW_MAX_EXAMPLES if operation.label in PASSWORD_CHECKING else MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def fuzz(case: Any) -> None:
        request = wire_request(case)
        answer = asyncio.run_coroutine_threadsafe(send(persona, case, request), loop).result(
            REQUEST_TIMEOUT_S + 5
        )
        try:
            case.validate_response(answer, checks=CHECKS)
            persona.expect(case, answer)
        except (Exception, BaseExceptionGroup) as exc:  # FailureGroup: a BaseExceptionGroup
            raise AssertionError(f"{exc}\n{describe(request, answer)}") from None

    try:
        fuzz()
    except Unsatisfiable:
        return None  # nothing to vary in this mode (e.g. no parameters to make invalid)
    except (Exception, BaseExceptionGroup) as exc:
        return f"[{persona.name}] {operation.label} ({mode.value}): {report(exc)}"
    return None


def report(exc: BaseException) -> str:
    """The failure's message, and those of the exceptions it groups (Hypothesis' flaky
    failures hide the real one inside)."""
    lines = [str(exc)]
    for inner in getattr(exc, "exceptions", ()):
        lines.append("  - " + report(inner).replace("\n", "\n    "))
    return "\n".join(lines)


async def fuzz_all(
    persona: Persona, ops: list[Any], path_parameters: dict[str, Any] | None = None
) -> None:
    assert ops, "no operations to fuzz: the schema or its tags changed"
    loop = asyncio.get_running_loop()
    failures = []
    for operation in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            started, sent = time.monotonic(), persona.statuses.total()
            failure = await asyncio.to_thread(
                fuzz_operation, loop, persona, operation, mode, path_parameters
            )
            took = time.monotonic() - started
            count = persona.statuses.total() - sent
            print(f"[{persona.name}] {operation.label} {mode.value}: {count} in {took:.1f} s")
            if failure is not None:
                failures.append(failure)
    print(f"[{persona.name}] statuses: {dict(sorted(persona.statuses.items()))}")
    assert not failures, "\n\n".join(failures)


async def test_unsigned_requests(system: System):
    """Nobody signs: partner endpoints refuse with 401; payer, console and health endpoints
    never fail and answer as documented."""
    schema = await served_schema(system)
    partner_ops = operations(schema, "partner")
    others = [op for op in operations(schema) if op not in partner_ops]
    assert {op.label for op in partner_ops} >= {"POST /v1/orders", "GET /v1/balance"}

    await fuzz_all(Persona("unsigned", system.api, expect_unsigned_refused), partner_ops)
    await fuzz_all(Persona("anonymous", system.api, expect_error_code), others)


async def test_signed_partner_requests(system: System):
    """Signed as the partner with KeeperAuth (a fresh nonce each): no server errors, every
    answer documented and conforming, and the signature always accepted."""
    schema = await served_schema(system)
    key_id, secret = system.credentials[PARTNER]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=system.app),
        base_url=BASE_URL,
        auth=KeeperAuth(key_id, secret),
    ) as partner:
        await fuzz_all(
            Persona("partner", partner, expect_signed_accepted), operations(schema, "partner")
        )


async def test_console_requests_as_operator(system: System):
    """Console endpoints with an operator's session token (sign-out gets a session of its
    own each time, so the others keep theirs)."""
    schema = await served_schema(system)
    operator = await system.login("olga")

    [(ivan,)] = system.sql("SELECT id FROM console_users WHERE username = 'ivan'")

    def open_session() -> str:
        # Straight into the database: signing in through the API costs an argon2 check.
        now = datetime.now(UTC)
        with system.sessions() as s:
            token = sessions_repo.open_session(s, ivan, now, idle_s=600, absolute_s=3600)
            s.commit()
        return token

    async def bearer(case: Any) -> dict[str, str]:
        if case.operation.label == "POST /v1/auth/logout":
            return {"Authorization": f"Bearer {await asyncio.to_thread(open_session)}"}
        return operator

    persona = Persona("operator", system.api, expect_error_code, headers=bearer)
    await fuzz_all(persona, operations(schema, "console"))
    # The operator's own session survived everything the fuzzer sent.
    queue = await system.api.get("/v1/operator/queue", headers=operator)
    assert queue.status_code == 200, queue.text


async def test_requests_about_real_orders(system: System):
    """The same, with the path naming real orders (a deposit and a withdrawal) instead of
    random ids, so that found orders, payer confirmations, cancellations and decisions
    answer with their documented bodies, whatever the rest of the request holds."""
    schema = await served_schema(system)
    uids = []
    for direction in ("deposit", "withdrawal"):
        created = await system.partner.post(
            "/v1/orders",
            json={
                "direction": direction,
                "amount_minor": 10_000,
                "currency": CURRENCY,
                "partner_order_id": f"fuzz-{direction}",
            },
        )
        assert created.status_code in (201, 202), created.text
        uids.append(created.json()["uid"])
    operator = await system.login("olga")

    async def as_operator(_: Any) -> dict[str, str]:
        return operator

    key_id, secret = system.credentials[PARTNER]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=system.app),
        base_url=BASE_URL,
        auth=KeeperAuth(key_id, secret),
    ) as partner:
        by_label = {op.label: op for op in operations(schema)}
        personas = [
            (
                Persona("payer", system.api, expect_error_code),
                ("GET /v1/pay/{uid}", "GET /pay/{uid}", "POST /v1/pay/{uid}/confirm"),
            ),
            (
                Persona("operator", system.api, expect_error_code, headers=as_operator),
                ("POST /v1/operator/orders/{uid}/decision",),
            ),
            (
                Persona("partner", partner, expect_signed_accepted),
                ("GET /v1/orders/{uid}", "POST /v1/orders/{uid}/cancel"),
            ),
        ]
        for uid in uids:
            for persona, labels in personas:
                await fuzz_all(persona, [by_label[label] for label in labels], {"uid": uid})
