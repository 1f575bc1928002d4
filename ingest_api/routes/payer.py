"""What the payment form calls: the order's public status, and the payer's confirmation.

No authentication: the order id is an unguessable capability (a keyed hash), and nothing
here reveals the partner or lets the payer do more than confirm their own order once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from db.crypto import CardNumberError, mask_pan, normalise_pan
from db.repositories import orders as orders_repo
from domain.orders import Direction
from ingest_api.deps import ServicesDep
from ingest_api.errors import (
    BODY_RESPONSES,
    TIMEOUT_RESPONSES,
    UNAVAILABLE_RESPONSES,
    ApiError,
    ErrorResponse,
)
from ingest_api.models import PayerConfirm, PayerStatus
from ingest_api.orders_common import (
    answered,
    card_to_pay,
    current_order,
    known,
    parse_uid,
    public_from_snapshot,
)
from ingest_api.views import from_row, payer_status
from schemas.orders import ConfirmPayment

router = APIRouter(prefix="/v1/pay", tags=["payer"], responses=UNAVAILABLE_RESPONSES)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such order"}
}


@router.get("/{uid}", summary="The order as the payer sees it", responses=NOT_FOUND)
async def payer_order(uid: str, services: ServicesDep) -> PayerStatus:
    order_id = parse_uid(uid)
    row = await services.db(lambda s: orders_repo.get_order(s, order_id))
    if row is None:
        raise ApiError(404, "order_not_found", "no such order")
    public = from_row(row, services.settings.public_base_url, await card_to_pay(services, row))
    return payer_status(public)


@router.post(
    "/{uid}/confirm",
    summary='"I have paid" (deposit) or the card to pay to (withdrawal)',
    responses={
        **NOT_FOUND,
        **BODY_RESPONSES,
        409: {"model": ErrorResponse, "description": "The order can no longer be confirmed"},
        422: {"model": ErrorResponse, "description": "Invalid card number"},
        **TIMEOUT_RESPONSES,
    },
)
async def confirm(uid: str, body: PayerConfirm, services: ServicesDep) -> PayerStatus:
    """Idempotent: confirming twice with the same card answers the same order."""
    order_id = parse_uid(uid)
    order = await current_order(services, order_id)  # the view: the order just created too
    if order is None:
        raise ApiError(404, "order_not_found", "no such order")
    masked = sealed = None
    if order.direction is Direction.WITHDRAWAL:
        if body.card_number is None:
            raise ApiError(422, "payer_card_required", "a withdrawal needs the card to pay to")
        try:
            pan = normalise_pan(body.card_number)
        except CardNumberError as exc:
            raise ApiError(422, exc.code, str(exc)) from None
        masked, sealed = mask_pan(pan), services.box.seal(pan)
    elif body.card_number is not None:
        raise ApiError(422, "unexpected_card_number", "a deposit takes no card number")
    command = ConfirmPayment(uid=order_id, payer_card_masked=masked, payer_card_ciphertext=sealed)
    outcome = await services.ask(
        command,
        timeout_s=services.settings.command_wait_s,
        lookup=known(order),
    )
    confirmed = answered(outcome, "reload the page")
    return payer_status(await public_from_snapshot(services, confirmed))
