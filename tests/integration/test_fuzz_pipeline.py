"""A property-based fuzz through the whole pipeline (issue 15, point 4).

Hypothesis draws hostile values — arbitrary Unicode with NUL and other controls, lone
surrogates, bidi and zero-width marks, decomposed forms, 4-byte characters, very long
strings; edge-of-range and wrong-typed numbers; duplicate keys, non-objects, deep nesting,
bytes that are not UTF-8 — for every field of every endpoint (tests/fixtures/fuzz_probes.py),
and sends them through the real API, agents, projector and PostgreSQL of the ``system``
fixture, partner requests signed with the partner's real key. Then:

* every answer was a 2xx, or a 4xx with ``{"error": {"code": ...}}`` (a ``429`` with
  ``Retry-After``); never a 5xx, never an unhandled exception;
* no part halted: the projector still runs, the API's order feed still reads;
* every accepted create is in PostgreSQL with its ``partner_order_id`` byte for byte;
* fresh orders made after the fuzz still go create -> confirm -> queue -> approve;
* reconciliation (``make reconcile``'s checks) finds no mismatch.

Failures are collected, not stopped at: the assertion lists each distinct one (endpoint,
field, what is odd about the input, what happened) with an example. Sizes follow
``KEEPER_FAULT_SCALE``: ``ci`` (default) sends a few hundred requests, derandomised, so a
run is reproducible; ``full`` (``make faults``) sends many more. ``KEEPER_FUZZ_SEED=<int>``
explores other examples, reproducibly.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import strategies as st

from tests.fixtures.fuzz_pipeline import fuzzer, pipeline_problems, prepare_pool, summary
from tests.fixtures.fuzz_probes import (
    LOGIN_VALID,
    VALID_CREATE,
    auth_probes,
    balance_probes,
    confirm_probes,
    create_probes,
    decision_probes,
    explicit_confirms,
    explicit_creates,
    explicit_decisions,
    explicit_logins,
    explicit_passwords,
    list_probes,
    login_probes,
    page_probes,
    password_probes,
    path_probes,
    queue_probes,
    raw_probes,
)
from tests.fixtures.system import PARTNER, PASSWORD, System

FULL = os.environ.get("KEEPER_FAULT_SCALE", "ci") == "full"
SEED = int(os.environ["KEEPER_FUZZ_SEED"]) if os.environ.get("KEEPER_FUZZ_SEED") else None

#: Drawn examples per endpoint; creates travel the whole pipeline, so they get more.
EXAMPLES = 250 if FULL else 25
CREATE_EXAMPLES = 1000 if FULL else 100
#: Sign-in and password change verify an argon2id hash (64 MiB): about a second each.
SLOW_EXAMPLES = 40 if FULL else 4
#: Real orders of each kind to aim at (new, processing, cancellable).
POOL_SIZE = 12 if FULL else 5

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.timeout(5400 if FULL else 900),
    # Hypothesis notes a change of the global `random` state while it draws; here that is
    # the event loop's thread (Kafka clients pick nodes at random), not the strategies.
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
    # Drawn bodies can be deep on purpose (20 000 brackets); their repr is only bookkeeping.
    pytest.mark.filterwarnings(
        "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
    ),
]


async def test_hostile_input_on_every_endpoint_leaves_the_pipeline_whole(system: System) -> None:
    pool = await prepare_pool(system, POOL_SIZE)
    key_id, secret = system.credentials[PARTNER]
    decision_body = st.fixed_dictionaries({"verdict": st.just("approve"), "reason": st.just("")})
    confirm_body = st.fixed_dictionaries({"card_number": st.just("4242424242424242")})
    password_body = st.fixed_dictionaries(
        {"current_password": st.just(PASSWORD), "new_password": st.just("a new password")}
    )
    processing = st.sampled_from(pool.processing).map(
        lambda uid: f"/v1/operator/orders/{uid}/decision"
    )
    fresh = st.sampled_from(pool.withdrawals_new).map(lambda uid: f"/v1/pay/{uid}/confirm")
    groups = [
        ("create", create_probes(), CREATE_EXAMPLES, explicit_creates()),
        (
            "create body",
            raw_probes("create body", "/v1/orders", "partner", VALID_CREATE, create=True),
            EXAMPLES * 2,
            [],
        ),
        ("get", path_probes("get", "GET", "/v1/orders/{}", pool.every, "partner"), EXAMPLES, []),
        ("list", list_probes(), EXAMPLES * 2, []),
        ("balance", balance_probes(), EXAMPLES, []),
        ("auth", auth_probes(key_id, secret), EXAMPLES * 2, []),
        ("payer", path_probes("payer", "GET", "/v1/pay/{}", pool.every, "public"), EXAMPLES, []),
        ("pay page", page_probes(pool), EXAMPLES, []),
        ("confirm", confirm_probes(pool), EXAMPLES * 2, explicit_confirms(pool)),
        ("confirm body", raw_probes("confirm body", fresh, "public", confirm_body), EXAMPLES, []),
        ("login", login_probes(), SLOW_EXAMPLES, explicit_logins()),
        (
            "login body",
            raw_probes("login body", "/v1/auth/login", "public", LOGIN_VALID),
            SLOW_EXAMPLES,
            [],
        ),
        ("password", password_probes("ann"), SLOW_EXAMPLES, explicit_passwords("ann")),
        (
            "password body",
            raw_probes("password body", "/v1/auth/password", "fresh:ann", password_body),
            SLOW_EXAMPLES,
            [],
        ),
        ("queue", queue_probes(), EXAMPLES, []),
        ("decision", decision_probes(pool), EXAMPLES * 2, explicit_decisions(pool)),
        (
            "decision body",
            raw_probes("decision body", processing, "operator", decision_body),
            EXAMPLES,
            [],
        ),
        (
            "cancel",
            path_probes(
                "cancel", "POST", "/v1/orders/{}/cancel", pool.cancellable + pool.foreign, "partner"
            ),
            EXAMPLES,
            [],
        ),
    ]

    async with fuzzer(system) as fuzz:
        for group, probes, examples, explicit in groups:
            await asyncio.to_thread(fuzz.run, group, probes, examples, explicit, SEED)
        findings = fuzz.report()
        accepted, parts = dict(fuzz.accepted), fuzz.parts
    print(f"{len(accepted)} fuzzed creates accepted")

    problems = await pipeline_problems(system, accepted, parts)

    assert (findings, problems) == ([], []), summary(findings, problems)
