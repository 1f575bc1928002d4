"""Disputes: the payer or the partner opens one with a receipt, an operator settles it.

- ``POST /v1/orders/{uid}/disputes`` (partner, signed) and ``POST /v1/pay/{uid}/dispute``
  (payer, the link is the capability) take ``multipart/form-data``: a ``receipt`` file (PDF,
  PNG or JPEG, judged from its bytes, at most 5 MiB) and an optional ``comment``.
- ``GET /v1/disputes/{id}`` (partner) and ``GET /v1/pay/{uid}/dispute`` (payer) read it.
- ``POST /v1/operator/disputes/{id}/decision`` (console session) accepts or rejects it. An
  acceptance is committed first, then its late credit is sent to the order's desk, which
  books it once; if that send fails the answer says so, and accepting again re-sends it.

A dispute is written to PostgreSQL directly: it is rare, carries a document, and is not on
the order's hot path (ADR 0006 keeps create, confirm and decide off the database).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Request, status
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from db.repositories import disputes as disputes_repo
from domain.disputes import MAX_RECEIPT_BYTES, OpenedBy
from ingest_api.deps import CurrentPartner, ServicesDep
from ingest_api.errors import (
    BODY_RESPONSES,
    COMMON_RESPONSES,
    UNAVAILABLE_RESPONSES,
    ApiError,
    ErrorResponse,
)
from ingest_api.models import (
    DisputeDecisionCreate,
    DisputeDecisionPublic,
    DisputePublic,
    PayerDispute,
)
from ingest_api.orders_common import parse_uid
from ingest_api.routes.operator import UNAUTHORIZED, CurrentUser
from schemas.disputes import SettleDispute

partner_router = APIRouter(prefix="/v1", tags=["partner"], responses=COMMON_RESPONSES)
payer_router = APIRouter(prefix="/v1/pay", tags=["payer"], responses=UNAVAILABLE_RESPONSES)
console_router = APIRouter(prefix="/v1/operator", tags=["console"], responses=UNAUTHORIZED)

SETTLING_ROLES: Final = frozenset({"operator", "admin"})

#: The request body of both upload endpoints, for the OpenAPI schema (the endpoints read the
#: form themselves, after the signature over its raw bytes is checked).
UPLOAD_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["receipt"],
                    "properties": {
                        "receipt": {
                            "type": "string",
                            "format": "binary",
                            "description": "PDF, PNG or JPEG (judged from the file's bytes), "
                            f"at most {MAX_RECEIPT_BYTES} bytes",
                        },
                        "comment": {"type": "string", "maxLength": 1000},
                    },
                }
            }
        },
    }
}
OPEN_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorResponse, "description": "No such order (of yours)"},
    409: {
        "model": ErrorResponse,
        "description": "Not an expired or rejected deposit (`order_not_disputable`), or it "
        "has a dispute already (`dispute_exists`)",
    },
    413: {"model": ErrorResponse, "description": "Receipt over 5 MiB (`receipt_too_large`)"},
    415: {
        "model": ErrorResponse,
        "description": "Not multipart/form-data (`unsupported_media_type`), or the receipt "
        "is not a PDF, PNG or JPEG by its content (`receipt_type`)",
    },
    422: {
        "model": ErrorResponse,
        "description": "No receipt, a malformed form, or a comment outside the text rule",
    },
}


def _now() -> datetime:
    return datetime.now(UTC)


async def read_upload(request: Request) -> tuple[bytes, str | None]:
    """The receipt's bytes and the comment from a ``multipart/form-data`` body."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(
            415, "unsupported_media_type", "send multipart/form-data with a `receipt` file"
        )
    try:
        form = await request.form(max_files=1, max_fields=2, max_part_size=16 * 1024)
    except HTTPException as exc:  # starlette's refusal of a malformed or oversized form
        raise ApiError(422, "malformed_form", str(exc.detail)) from exc
    try:
        receipt, comment = form.get("receipt"), form.get("comment")
        if not isinstance(receipt, UploadFile):
            raise ApiError(422, "receipt_missing", "attach the receipt as the `receipt` file")
        if comment is not None and not isinstance(comment, str):
            raise ApiError(422, "malformed_form", "`comment` must be text, not a file")
        data = await receipt.read(MAX_RECEIPT_BYTES + 1)
    finally:
        await form.close()
    return data, comment


def _public(fields: dict[str, Any]) -> DisputePublic:
    return DisputePublic.model_validate(fields)


# --- partner ----------------------------------------------------------------------------


@partner_router.post(
    "/orders/{uid}/disputes",
    status_code=status.HTTP_201_CREATED,
    summary="Dispute an expired or rejected deposit of yours, with the payer's receipt",
    responses=OPEN_RESPONSES,
    openapi_extra=UPLOAD_BODY,
)
async def open_partner_dispute(
    uid: str, request: Request, partner: CurrentPartner, services: ServicesDep
) -> DisputePublic:
    order_uid = parse_uid(uid)
    receipt, comment = await read_upload(request)
    deadline_s = services.settings.dispute_deadline_s

    def open_(session: Any) -> dict[str, Any]:
        view = disputes_repo.open_dispute(
            session,
            order_uid=order_uid,
            opened_by=OpenedBy.PARTNER,
            receipt=receipt,
            comment=comment,
            now=_now(),
            deadline_s=deadline_s,
            partner_id=partner.partner_id,
        )
        found = disputes_repo.public_dispute(session, view.dispute_id, partner_id=view.partner_id)
        assert found is not None
        return found

    return _public(await services.db(open_, commit=True))


@partner_router.get(
    "/disputes/{dispute_id}",
    summary="Read one of your disputes",
    responses={404: {"model": ErrorResponse, "description": "No such dispute of yours"}},
)
async def get_partner_dispute(
    dispute_id: str, partner: CurrentPartner, services: ServicesDep
) -> DisputePublic:
    key = _dispute_key(dispute_id)
    found = await services.db(
        lambda s: disputes_repo.public_dispute(s, key, partner_id=partner.partner_id)
    )
    if found is None:
        raise ApiError(404, "dispute_not_found", "no such dispute")
    return _public(found)


def _dispute_key(dispute_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(dispute_id)
    except ValueError as exc:
        raise ApiError(404, "dispute_not_found", "no such dispute") from exc


# --- payer ------------------------------------------------------------------------------


def _payer_view(view: disputes_repo.DisputeView) -> PayerDispute:
    return PayerDispute(
        status=view.status,
        created_at=view.created_at,
        deadline_at=view.deadline_at,
        resolution_reason=view.resolution_reason,
    )


@payer_router.post(
    "/{uid}/dispute",
    status_code=status.HTTP_201_CREATED,
    summary='"I paid": dispute an expired or rejected deposit, with the receipt',
    responses=OPEN_RESPONSES,
    openapi_extra=UPLOAD_BODY,
)
async def open_payer_dispute(uid: str, request: Request, services: ServicesDep) -> PayerDispute:
    order_uid = parse_uid(uid)
    receipt, comment = await read_upload(request)
    deadline_s = services.settings.dispute_deadline_s
    view = await services.db(
        lambda s: disputes_repo.open_dispute(
            s,
            order_uid=order_uid,
            opened_by=OpenedBy.PAYER,
            receipt=receipt,
            comment=comment,
            now=_now(),
            deadline_s=deadline_s,
        ),
        commit=True,
    )
    return _payer_view(view)


@payer_router.get(
    "/{uid}/dispute",
    summary="The dispute on this order, as the payer sees it",
    responses={404: {"model": ErrorResponse, "description": "No dispute on this order"}},
)
async def get_payer_dispute(uid: str, services: ServicesDep) -> PayerDispute:
    order_uid = parse_uid(uid)
    view = await services.db(lambda s: disputes_repo.dispute_of_order(s, order_uid))
    if view is None:
        raise ApiError(404, "dispute_not_found", "no dispute on this order")
    return _payer_view(view)


# --- console ----------------------------------------------------------------------------


@console_router.post(
    "/disputes/{dispute_id}/decision",
    summary="Accept (credit the deposit late) or reject (with a reason) an open dispute",
    responses={
        **BODY_RESPONSES,
        404: {"model": ErrorResponse, "description": "No such dispute"},
        409: {"model": ErrorResponse, "description": "Resolved already (`dispute_resolved`)"},
        422: {"model": ErrorResponse, "description": "A rejection without a reason"},
        503: {
            "model": ErrorResponse,
            "description": "Accepted, but the late credit could not be sent "
            "(`credit_not_sent`): accept again; or the API is at capacity",
        },
    },
)
async def decide_dispute(
    dispute_id: str,
    body: DisputeDecisionCreate,
    user: CurrentUser,
    services: ServicesDep,
) -> DisputeDecisionPublic:
    if user.role not in SETTLING_ROLES:
        raise ApiError(403, "forbidden", f"role {user.role!r} cannot settle disputes")
    key = _dispute_key(dispute_id)
    view, settlement = await services.db(
        lambda s: disputes_repo.resolve_dispute(
            s,
            dispute_id=key,
            verdict=body.verdict,
            reason=body.reason,
            actor=user.username,
            now=_now(),
        ),
        commit=True,
    )
    if settlement is not None:
        try:
            await services.bus.send(SettleDispute(**asdict(settlement)))
        except Exception as exc:  # the broker is away: accepted, credit not yet sent
            raise ApiError(
                503,
                "credit_not_sent",
                "the dispute is accepted, but its credit could not be sent; accept it again",
            ) from exc
    return DisputeDecisionPublic(
        dispute_id=view.dispute_id, status=view.status, credit_sent=settlement is not None
    )
