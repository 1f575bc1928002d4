"""The partner API: create, read, list and cancel orders; read the balance.

Every endpoint here is HMAC-authenticated (:data:`~ingest_api.deps.CurrentPartner`) and sees
only the caller's own orders: another partner's order is answered exactly like a missing one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from db.repositories import balances as balances_repo
from db.repositories import orders as orders_repo
from domain.ids import order_uid
from domain.money import validate_currency
from domain.orders import Direction, OrderStatus
from domain.outcomes import Done, Refused, judge
from ingest_api.cursors import open_cursor, sign_cursor
from ingest_api.deps import CurrentPartner, Services, ServicesDep
from ingest_api.errors import COMMON_RESPONSES, TIMEOUT_RESPONSES, ApiError, ErrorResponse
from ingest_api.models import (
    BalanceList,
    BalancePublic,
    OrderAccepted,
    OrderCreate,
    OrderPage,
    OrderPublic,
)
from ingest_api.orders_common import (
    answered,
    card_to_pay,
    current_order,
    forgotten_order,
    known,
    parse_uid,
    partner_terms,
    public_from_snapshot,
    stored_order,
)
from ingest_api.outcomes import Outcome, refusal
from ingest_api.views import from_row, links
from schemas.desks import partner_desk
from schemas.orders import CancelOrder, OpenOrder
from schemas.translation import epoch_ms, to_command

router = APIRouter(prefix="/v1", tags=["partner"], responses=COMMON_RESPONSES)


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    summary="Create a deposit or withdrawal order",
    responses={
        202: {"model": OrderAccepted, "description": "Accepted, still reserving; poll status"},
        403: {"model": ErrorResponse, "description": "Partner not active"},
        409: {"model": ErrorResponse, "description": "Same partner_order_id, different body"},
    },
)
async def create_order(
    body: OrderCreate, partner: CurrentPartner, services: ServicesDep, response: Response
) -> OrderPublic | OrderAccepted:
    """Answers with the order once its resources are reserved: the card to pay to (deposit)
    or the held funds (withdrawal), or its decline. Repeating the request with the same
    ``partner_order_id`` and body returns the same order; a different body is a ``409``."""
    validate_currency(body.currency)  # refuse an unsupported currency before anything moves
    terms = await partner_terms(services, partner.partner_id)  # memory (ADR 0006)
    if terms is None or terms.status != "active":
        raise ApiError(403, "partner_inactive", "the partner account is not active")
    secret = services.settings.order_id_secret.get_secret_value().encode()
    uid = uuid.UUID(order_uid(secret, partner.partner_id, body.partner_order_id))
    deposit = body.direction is Direction.DEPOSIT
    command = OpenOrder(
        uid=uid,
        partner_id=partner.partner_id,
        partner_order_id=body.partner_order_id,
        direction=body.direction,
        amount_minor=body.amount_minor,
        currency=body.currency,
        ttl_s=body.ttl_s,
        fee_bp=terms.deposit_fee_bp if deposit else terms.withdrawal_fee_bp,
        pool_id=terms.pool_id if deposit else None,
        callback_url=str(body.callback_url) if body.callback_url else None,
        desk=partner_desk(partner.partner_id, terms.pool_id),
    )
    # An order the view does not hold may be one the desk has forgotten (ADR 0008): its
    # repeat is judged against PostgreSQL, never sent to reopen it.
    outcome = await services.ask(
        command,
        timeout_s=services.settings.create_wait_s,
        lookup=lambda uid: forgotten_order(services, uid),
    )
    if outcome.judgement is None:  # no event in time: an old order, refused as a conflict?
        outcome = await recheck(services, command, outcome)
    judgement = outcome.judgement
    if isinstance(judgement, Refused):
        raise refusal(judgement)
    if not isinstance(judgement, Done) or outcome.snapshot is None:
        response.status_code = status.HTTP_202_ACCEPTED
        payment_url, status_url = links(services.settings.public_base_url, uid)
        return OrderAccepted(uid=uid, status_url=status_url, payment_url=payment_url)
    return await public_from_snapshot(services, outcome.snapshot)


async def recheck(services: Services, command: OpenOrder, outcome: Outcome) -> Outcome:
    """Judge an opening that no event answered against PostgreSQL's copy of the order.

    The agent publishes nothing for an opening it refuses, and an order older than the view
    is not in memory: a repeated request with a different body for such an order is known
    here, after the wait, from PostgreSQL.
    """
    stored = await stored_order(services, command.uid)
    if stored is None or (outcome.snapshot and outcome.snapshot.version >= stored.version):
        return outcome
    core = to_command(command, epoch_ms(datetime.now(UTC)))
    return Outcome(judge(stored.to_order(), core), stored)


@router.get(
    "/orders/{uid}",
    summary="Read one of your orders",
    responses={404: {"model": ErrorResponse, "description": "No such order of yours"}},
)
async def get_order(uid: str, partner: CurrentPartner, services: ServicesDep) -> OrderPublic:
    return await _own_order(services, partner.partner_id, parse_uid(uid))


@router.get("/orders", summary="List your orders, newest first")
async def list_orders(
    partner: CurrentPartner,
    services: ServicesDep,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    direction: Direction | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        str | None,
        Query(
            max_length=200,
            description="the `next_after` of the previous page, exactly as issued to you",
        ),
    ] = None,
) -> OrderPage:
    """``after`` is the ``next_after`` of the previous page: signed, and only valid for the
    partner it was issued to (anything else is ``422 invalid_cursor``)."""
    since, until = _utc(created_from), _utc(created_to)
    secret = services.settings.order_id_secret.get_secret_value().encode()
    position = None if after is None else open_cursor(secret, partner.partner_id, after)
    page = await services.db(
        lambda s: orders_repo.list_orders(
            s,
            partner_id=partner.partner_id,
            status=status_,
            direction=direction,
            created_from=since,
            created_to=until,
            limit=limit,
            after=position,
        )
    )
    base = services.settings.public_base_url
    items = [from_row(row, base, await card_to_pay(services, row)) for row in page.items]
    issued = (
        None
        if page.next_after is None
        else sign_cursor(secret, partner.partner_id, page.next_after)
    )
    return OrderPage(items=items, next_after=issued)


def _utc(moment: datetime | None) -> datetime | None:
    """A filter's moment in UTC: PostgreSQL takes offsets up to ±15:59 only, and ``+16:00``
    is valid ISO 8601. A moment past either end of what UTC holds here (year 1 east of
    Greenwich, 9999 west of it) becomes that end, which filters exactly the same."""
    if moment is None or moment.utcoffset() is None:
        return moment  # naive: the repository refuses it with a precise error
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        end = datetime.max if moment.year == datetime.max.year else datetime.min
        return end.replace(tzinfo=UTC)


@router.post(
    "/orders/{uid}/cancel",
    summary="Cancel an order the payer has not acted on",
    responses={
        404: {"model": ErrorResponse, "description": "No such order of yours"},
        409: {"model": ErrorResponse, "description": "The order is no longer new"},
        **TIMEOUT_RESPONSES,
    },
)
async def cancel_order(uid: str, partner: CurrentPartner, services: ServicesDep) -> OrderPublic:
    order_id = parse_uid(uid)
    order = await current_order(services, order_id)
    if order is None or order.partner_id != partner.partner_id:
        raise ApiError(404, "order_not_found", "no such order")  # before touching Kafka
    command = CancelOrder(uid=order_id, partner_id=partner.partner_id)
    outcome = await services.ask(
        command,
        timeout_s=services.settings.command_wait_s,
        lookup=known(order),
    )
    return await public_from_snapshot(services, answered(outcome, "read it again later"))


@router.get("/balance", summary="Your balances per currency")
async def balance(partner: CurrentPartner, services: ServicesDep) -> BalanceList:
    rows = await services.db(lambda s: balances_repo.partner_balances(s, partner.partner_id))
    return BalanceList(
        partner_id=partner.partner_id,
        balances=[
            BalancePublic(
                currency=row.currency,
                available_minor=row.available_minor,
                held_minor=row.held_minor,
                updated_at=row.updated_at,
            )
            for row in rows
        ],
    )


async def _own_order(services: Services, partner_id: str, uid: uuid.UUID) -> OrderPublic:
    """From the API's view of ``order-events`` when it holds the order (it is there as soon
    as the create is answered, and the projector may trail it), else from PostgreSQL."""
    known = services.view.latest(uid) if services.feed is not None else None
    if known is not None:
        if known.partner_id != partner_id:
            raise ApiError(404, "order_not_found", "no such order")
        return await public_from_snapshot(services, known)
    row = await services.db(lambda s: orders_repo.get_order(s, uid))
    if row is None or row.partner_id != partner_id:
        raise ApiError(404, "order_not_found", "no such order")
    return from_row(row, services.settings.public_base_url, await card_to_pay(services, row))
