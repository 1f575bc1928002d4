"""Console users: sign-in, sign-out, password change, and operators' decisions on orders.

Sign-in is one step, or two for a user with two-factor sign-in (TOTP): the password answers
a short-lived challenge, and the challenge with a code opens the session.

Sessions are bearer tokens (``Authorization: Bearer ...``) stored only as hashes, with idle
and absolute timeouts. Sign-in attempts are throttled per username and per client address
(:mod:`ingest_api.throttle`): a locked scope answers ``429 too_many_attempts`` with
``Retry-After``, whatever the password. Every decision goes through the order agent, which
serialises all commands of one order: when two operators decide at once, exactly one wins
and the other is told who decided first.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from sqlalchemy.orm import Session

from db.repositories import audit, notifications
from db.repositories import login_challenges as challenges_repo
from db.repositories import login_throttle as throttle_repo
from db.repositories import orders as orders_repo
from db.repositories import second_factor as second_factor_repo
from db.repositories import sessions as sessions_repo
from db.repositories import users as users_repo
from domain.orders import Direction
from domain.outcomes import Done, Refused
from ingest_api.deps import Services, ServicesDep
from ingest_api.errors import (
    BODY_RESPONSES,
    TIMEOUT_RESPONSES,
    UNAVAILABLE_RESPONSES,
    ApiError,
    ErrorResponse,
)
from ingest_api.models import (
    DecisionCreate,
    DecisionPublic,
    LoginRequest,
    OperatorQueue,
    PasswordChange,
    PaymentSeen,
    PaymentSeenPublic,
    QueueItem,
    SecondFactorChallenge,
    SecondFactorLogin,
    SessionPublic,
)
from ingest_api.orders_common import answered, parse_uid, stored_order
from ingest_api.outcomes import refusal
from ingest_api.throttle import Attempt, TooManyAttemptsError, attempt_of
from schemas.orders import ConfirmPayment, DecideOrder, Verdict

router = APIRouter(prefix="/v1", tags=["console"], responses=UNAVAILABLE_RESPONSES)

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No valid session"},
    403: {
        "model": ErrorResponse,
        "description": "Role not allowed (`forbidden`), or the session may not act yet: "
        "`password_change_required` (an admin forced a reset), "
        "`second_factor_enrolment_required` (the role must have two-factor sign-in)",
    },
}
DECIDING_ROLES = frozenset({"operator", "admin"})


def _now() -> datetime:
    return datetime.now(UTC)


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "missing_session", "sign in first (Authorization: Bearer <token>)")
    return token.strip()


async def session_user(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> users_repo.ConsoleUser:
    """The session's user, whatever the session may do (sign-out and password change need
    no more): from the session cache when checked within the last ``session_cache_s``
    (ingest_api.session_cache), else from PostgreSQL."""
    token = _bearer(authorization)
    cache = services.session_cache
    user = cache.get(token) if cache is not None else None
    if user is not None:
        return user
    idle_s = services.settings.session_idle_s
    user = await services.db(
        lambda s: sessions_repo.session_user(s, token, _now(), idle_s), commit=True
    )
    if user is None:
        raise ApiError(401, "session_expired", "the session expired or was closed; sign in")
    if cache is not None:
        cache.put(token, user)
    return user


SessionUser = Annotated[users_repo.ConsoleUser, Depends(session_user)]


async def current_user(user: SessionUser, services: ServicesDep) -> users_repo.ConsoleUser:
    """The session's user, if the session may act: a forced password reset is done, and a
    role that must have a second factor has one."""
    if user.must_change_password:
        raise ApiError(
            403, "password_change_required", "an admin reset your password: set a new one first"
        )
    if not user.second_factor and user.role in services.settings.second_factor_roles:
        raise ApiError(
            403,
            "second_factor_enrolment_required",
            f"role {user.role!r} must sign in with a second factor: set it up in the console "
            "(My account) first",
        )
    return user


CurrentUser = Annotated[users_repo.ConsoleUser, Depends(current_user)]


THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorResponse,
        "description": "Too many failed sign-ins (`too_many_attempts`); retry after "
        "`Retry-After` seconds",
    },
}


async def _admit(services: Services, scopes: tuple[throttle_repo.Scope, ...]) -> None:
    """Count the attempt, or refuse it with ``429`` while one of its scopes is locked."""
    now = _now()
    wait_s = await services.db(lambda s: throttle_repo.admit_attempt(s, scopes, now), commit=True)
    if wait_s > 0:
        raise TooManyAttemptsError(wait_s)


async def _failed(
    services: Services, attempt: Attempt, scopes: tuple[throttle_repo.Scope, ...]
) -> None:
    now = _now()
    await services.db(
        lambda s: throttle_repo.record_failure(
            s, scopes, now, actor=attempt.actor, address=attempt.address
        ),
        commit=True,
    )


@router.post(
    "/auth/login",
    summary="Sign in as a console user (step 1: the password)",
    responses={
        200: {
            "description": "A session (`SessionPublic`), or, for a user with two-factor "
            "sign-in, a `SecondFactorChallenge` for step 2"
        },
        **BODY_RESPONSES,
        401: {"model": ErrorResponse, "description": "Wrong username or password"},
        **THROTTLED,
    },
)
async def login(
    body: LoginRequest, request: Request, services: ServicesDep
) -> SessionPublic | SecondFactorChallenge:
    """Every attempt counts against its username and its address, before the password is
    checked; an unknown username costs the same hashing and is throttled the same way.

    A user with two-factor sign-in gets no session here but a `SecondFactorChallenge`
    (valid `KEEPER_LOGIN_CHALLENGE_S`, 5 min): post it with a code to
    `/v1/auth/login/second-factor`. The attempt stays counted against the throttle until
    the code is right, so a known password gives no extra guesses at the code."""
    settings = services.settings
    attempt = attempt_of(request, settings, body.username)
    await _admit(services, attempt.scopes)
    user = await services.db(
        lambda s: users_repo.authenticate(s, body.username, body.password), commit=True
    )
    if user is None:
        await _failed(services, attempt, attempt.scopes)
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    now = _now()
    if user.second_factor:
        challenge = await services.db(
            lambda s: challenges_repo.open_challenge(s, user.id, now, settings.login_challenge_s),
            commit=True,
        )
        expires = now + timedelta(seconds=settings.login_challenge_s)
        return SecondFactorChallenge(challenge=challenge, expires_at=expires)
    return await _open_session(services, user, attempt, now)


async def _open_session(
    services: Services,
    user: users_repo.ConsoleUser,
    attempt: Attempt,
    now: datetime,
    challenge: str | None = None,
) -> SessionPublic:
    settings = services.settings

    def open_session(session: Session) -> str | None:
        if challenge is not None and not challenges_repo.close_challenge(session, challenge, now):
            return None  # another second step with this challenge won
        throttle_repo.record_success(session, attempt.scopes, now)
        if challenge is not None:  # the password's attempt (step 1) succeeded too
            throttle_repo.record_success(session, attempt.address_scope, now)
        return sessions_repo.open_session(
            session, user.id, now, settings.session_idle_s, settings.session_absolute_s
        )

    token = await services.db(open_session, commit=True)
    if token is None:
        raise ApiError(401, "invalid_challenge", "the challenge was used; sign in again")
    expires_at = now + timedelta(seconds=settings.session_absolute_s)
    return SessionPublic(
        token=token,
        username=user.username,
        role=user.role,
        expires_at=expires_at,
        second_factor_enrolment_required=(
            not user.second_factor and user.role in settings.second_factor_roles
        ),
        password_change_required=user.must_change_password,
    )


@router.post(
    "/auth/login/second-factor",
    summary="Sign in as a console user (step 2: the code)",
    responses={
        **BODY_RESPONSES,
        401: {
            "model": ErrorResponse,
            "description": "`invalid_challenge`: unknown, expired or used challenge (sign in "
            "again); `invalid_code`: wrong, already used or expired code (counted against "
            "the sign-in throttle)",
        },
        **THROTTLED,
    },
)
async def login_second_factor(
    body: SecondFactorLogin, request: Request, services: ServicesDep
) -> SessionPublic:
    """The code of the user's authenticator app, or one of their recovery codes, for the
    challenge step 1 answered with. A TOTP code is accepted once: the same code again (or an
    older one) is refused, even within its 30 s. Wrong codes count against the user's and
    the address's sign-in throttle exactly as wrong passwords do."""
    now = _now()
    challenged = await services.db(
        lambda s: challenges_repo.challenged_user(s, body.challenge, now)
    )
    if challenged is None:
        raise ApiError(401, "invalid_challenge", "the challenge expired or is unknown; sign in")
    user_id, username = challenged
    attempt = attempt_of(request, services.settings, username)
    await _admit(services, attempt.scopes)
    box = services.box

    def check(session: Session) -> users_repo.ConsoleUser | None:
        method = second_factor_repo.verify(session, box, user_id, body.code, _now())
        return None if method is None else users_repo.get_user(session, username)

    user = await services.db(check, commit=True)
    if user is None:
        await _failed(services, attempt, attempt.scopes)
        raise ApiError(401, "invalid_code", "the code is wrong or was used already")
    return await _open_session(services, user, attempt, _now(), body.challenge)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHORIZED)
async def logout(
    user: SessionUser, services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    token = _bearer(authorization)
    await services.db(lambda s: sessions_repo.close_session(s, token), commit=True)
    if services.session_cache is not None:  # after the commit: no check re-caches it
        services.session_cache.forget(token)


@router.post(
    "/auth/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**UNAUTHORIZED, **BODY_RESPONSES, **THROTTLED},
)
async def change_password(
    body: PasswordChange, user: SessionUser, request: Request, services: ServicesDep
) -> None:
    """A wrong current password counts against the user's sign-in scope: a session is not a
    way around the throttle to guess the password."""
    users_repo.check_password_rule(body.new_password)  # 422 before anything is counted
    attempt = attempt_of(request, services.settings, user.username)
    await _admit(services, attempt.user_scope)
    changed = await services.db(
        lambda s: users_repo.change_password(s, user.id, body.current_password, body.new_password),
        commit=True,
    )
    if not changed:
        await _failed(services, attempt, attempt.user_scope)
        raise ApiError(401, "invalid_credentials", "the current password is wrong")
    if services.session_cache is not None:  # the change ended every session of the user
        services.session_cache.forget_user(user.id)
    now = _now()
    await services.db(
        lambda s: throttle_repo.record_success(s, attempt.user_scope, now), commit=True
    )


def _queue_item(entry: orders_repo.QueueEntry, now: datetime) -> QueueItem:
    order = entry.order
    return QueueItem(
        uid=order.uid,
        partner_id=order.partner_id,
        partner_order_id=order.partner_order_id,
        direction=Direction(order.direction),
        amount_minor=order.amount_minor,
        fee_minor=order.fee_minor,
        currency=order.currency,
        card_masked=entry.card_masked,
        card_bank=entry.card_bank,
        payer_card_masked=order.payer_card_masked,
        created_at=order.created_at,
        waiting_since=entry.waiting_since,
        waited_s=max(0, int((now - entry.waiting_since).total_seconds())),
    )


@router.get(
    "/operator/queue",
    summary="Orders awaiting a decision, the longest-waiting first",
    responses=UNAUTHORIZED,
)
async def queue(
    user: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=orders_repo.MAX_PAGE)] = 100,
) -> OperatorQueue:
    if user.role not in DECIDING_ROLES:
        raise ApiError(403, "forbidden", f"role {user.role!r} has no operator queue")
    entries = await services.db(lambda s: orders_repo.awaiting_decision(s, limit=limit))
    now = _now()
    return OperatorQueue(items=[_queue_item(entry, now) for entry in entries])


@router.post(
    "/operator/orders/{uid}/decision",
    summary="Approve, reject or fail an order awaiting a decision",
    responses={
        **UNAUTHORIZED,
        **BODY_RESPONSES,
        404: {"model": ErrorResponse, "description": "No such order"},
        409: {"model": ErrorResponse, "description": "Already decided, or not awaiting one"},
        **TIMEOUT_RESPONSES,
    },
)
async def decide(
    uid: str, body: DecisionCreate, user: CurrentUser, services: ServicesDep
) -> DecisionPublic:
    if user.role not in DECIDING_ROLES:
        raise ApiError(403, "forbidden", f"role {user.role!r} cannot decide orders")
    order_id = parse_uid(uid)
    command = DecideOrder(
        uid=order_id,
        verdict=Verdict(body.verdict),
        operator=user.username,
        reason=body.reason,
        decision_id=uuid.uuid4(),
    )
    started = time.monotonic()
    outcome = await services.ask(
        command,
        timeout_s=services.settings.command_wait_s,
        lookup=lambda uid: stored_order(services, uid),
    )
    if isinstance(outcome.judgement, Refused):
        raise refusal(outcome.judgement)
    if not isinstance(outcome.judgement, Done):
        waited = time.monotonic() - started
        raise ApiError(504, "timeout", f"no answer after {waited:.1f} s; reload the order")
    order = outcome.judgement.order
    await services.db(
        lambda s: audit.record(
            s,
            actor=user.username,
            action="order.decide",
            entity="order",
            entity_id=str(order.uid),
            before={"status": "processing"},
            after={
                "status": str(order.status),
                "verdict": str(body.verdict),
                "reason": body.reason,
                "decision_id": str(command.decision_id),
            },
        ),
        commit=True,
    )
    return DecisionPublic(
        uid=order_id,
        status=order.status,
        decided_by=order.decided_by,
        decision_reason=order.decision_reason,
    )


@router.post(
    "/operator/orders/{uid}/payment",
    summary="Confirm a deposit still `new` as paid: a bank notification attached to it",
    responses={
        **UNAUTHORIZED,
        **BODY_RESPONSES,
        404: {"model": ErrorResponse, "description": "No such order"},
        409: {
            "model": ErrorResponse,
            "description": "The notification is not attached to this order "
            "(`notification_not_attached`), or the order can no longer be confirmed "
            "(`illegal_transition`, `deadline_passed`)",
        },
        **TIMEOUT_RESPONSES,
    },
)
async def confirm_payment(
    uid: str, body: PaymentSeen, user: CurrentUser, services: ServicesDep
) -> PaymentSeenPublic:
    """What the payer's "I have paid" does, on the operator's word: the order enters
    ``processing`` and awaits the decision (the console approves it next). Only with a bank
    notification the operator attached to this order (docs/devices.md); confirming an order
    already ``processing`` answers it unchanged."""
    if user.role not in DECIDING_ROLES:
        raise ApiError(403, "forbidden", f"role {user.role!r} cannot confirm payments")
    order_id = parse_uid(uid)
    notice = body.notification_id
    if not await services.db(lambda s: notifications.attached_to(s, notice, order_id)):
        raise ApiError(
            409,
            "notification_not_attached",
            f"bank notification {notice} is not attached to order {order_id}",
        )
    outcome = await services.ask(
        ConfirmPayment(uid=order_id),
        timeout_s=services.settings.command_wait_s,
        lookup=lambda uid: stored_order(services, uid),
    )
    confirmed = answered(outcome, "reload the order")
    await services.db(
        lambda s: audit.record(
            s,
            actor=user.username,
            action="order.confirm_payment",
            entity="order",
            entity_id=str(order_id),
            before=None,
            after={"status": str(confirmed.status), "notification_id": str(notice)},
        ),
        commit=True,
    )
    return PaymentSeenPublic(uid=order_id, status=confirmed.status)
