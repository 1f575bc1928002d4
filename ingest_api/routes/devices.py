"""The device API: a phone that holds a platform card forwards its bank's messages.

Devices sign their requests exactly as partners do (:mod:`ingest_api.signing`, scheme ``v1``)
with their own credential (``kd_...`` / ``ds_...``, :mod:`db.repositories.devices`); the
verifier is the partners', over a key lookup of devices. Every request of a device counts as
a sign of life; ``POST /v1/devices/heartbeat`` is one with nothing else to say.

``POST /v1/devices/notifications`` stores the message once (by device and device-side id,
then by the hash of text, sender and time), parses it with the bank templates, and sends a
parsed credit to the card's pool desk (``notification.match``), which matches it to the
open deposit it pays (ADR 0010). A message no template reads is stored as ``unparsed``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.crypto import SecretBox
from db.models import Card, CardPool
from db.repositories import bank_templates, devices, notifications
from db.repositories.devices import DeviceKey
from db.repositories.nonces import PgNonceStore
from domain.api_keys import ApiKey
from domain.bank_messages import MAX_TEXT_CHARS, Compiled, Parsed, parse
from domain.errors import DomainError
from ingest_api.deps import Services, ServicesDep
from ingest_api.errors import COMMON_RESPONSES, ApiError, ErrorResponse
from ingest_api.models import _Strict
from ingest_api.signing import RevokedApiKey, Verifier
from ingest_api.text_types import FreeText, Identifier, Label
from schemas.notifications import DeviceHealth, MatchNotification, MatchPolicy
from schemas.translation import epoch_ms

router = APIRouter(prefix="/v1/devices", tags=["devices"], responses=COMMON_RESPONSES)

#: How far ahead of the server's clock a phone's ``received_at`` may be (clock skew).
MAX_FUTURE_S = 300
#: Compiled templates are re-read from PostgreSQL at most this often (an admin's edit
#: applies within it).
TEMPLATES_TTL_S = 5.0


class DeviceKeys:
    """:class:`~ingest_api.signing.KeyLookup` over ``devices``: one read per request (devices
    send a few requests a minute), so a revocation applies to the very next request."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def get(self, key_id: str) -> ApiKey | None:
        found = await self.device(key_id)
        if found is None:
            return None
        return ApiKey(partner_id=found.device_id, secret=found.secret, active=found.active)

    async def device(self, key_id: str) -> DeviceKey | None:
        box: SecretBox = self._services.box
        return await self._services.db(lambda s: devices.find_device_key(s, box, key_id))


@dataclass
class DeviceAuth:
    verifier: Verifier
    keys: DeviceKeys


def device_auth(request: Request, services: Services) -> DeviceAuth:
    """The app's device verifier (built on first use, beside the partners', over the same
    nonce store), kept in ``app.state``."""
    state = request.app.state
    found: DeviceAuth | None = getattr(state, "device_auth", None)
    if found is None:
        keys = DeviceKeys(services)
        nonces = services.nonces or PgNonceStore(services.sessions)
        found = state.device_auth = DeviceAuth(Verifier(keys, nonces), keys)
    return found


async def current_device(request: Request, services: ServicesDep) -> DeviceKey:
    """Verify the device's signature (as partners sign) and record that it was heard."""
    auth = device_auth(request, services)
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    try:
        signed = await auth.verifier.verify(
            request.method,
            raw_path.decode("latin-1"),
            request.scope.get("query_string", b"").decode("latin-1"),
            request.headers,
            await request.body(),
        )
    except RevokedApiKey:
        raise ApiError(403, "device_revoked", "this device has been revoked") from None
    device = await auth.keys.device(signed.key_id)
    if device is None or not device.active:  # revoked between the two reads
        raise ApiError(403, "device_revoked", "this device has been revoked")
    await heard(services, device)
    return device


CurrentDevice = Annotated[DeviceKey, Depends(current_device)]


async def heard(services: Services, device: DeviceKey) -> None:
    """Note the device's sign of life; one reported silent is reported heard again, so its
    card's desk hands the card out again."""
    now = datetime.now(UTC)
    was_silent = await services.db(lambda s: devices.seen(s, device.device_id, now), commit=True)
    if was_silent is not None:
        health = DeviceHealth(
            pool_id=device.pool_id,
            card_id=device.card_id,
            device_id=device.device_id,
            silent=False,
            at_ms=epoch_ms(now),
        )
        await services.bus.send(health)


# --- heartbeat ------------------------------------------------------------------------------


class HeartbeatPublic(BaseModel):
    device_id: str
    card_id: str
    server_time: datetime


@router.post(
    "/heartbeat",
    summary="A device's sign of life",
    responses={403: {"model": ErrorResponse, "description": "`device_revoked`"}},
)
async def heartbeat(device: CurrentDevice) -> HeartbeatPublic:
    """Keeps the device's card in rotation: a card whose device is silent longer than the
    card projector's ``device_silent_after_s`` is taken out until it is heard again."""
    return HeartbeatPublic(
        device_id=device.device_id, card_id=device.card_id, server_time=datetime.now(UTC)
    )


# --- notifications ------------------------------------------------------------------------


class NotificationCreate(_Strict):
    notification_id: Annotated[Identifier, Field(min_length=1, max_length=128)] = Field(
        description="the device's own id of the message; a retry sends the same"
    )
    card_id: Annotated[Identifier, Field(max_length=64)] = Field(
        description="the card the device is registered for"
    )
    sender: Annotated[Label, Field(min_length=1, max_length=128)] = Field(
        description="the SMS sender (bank short code) or the app package of a push"
    )
    text: Annotated[FreeText, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    received_at: AwareDatetime = Field(description="when the phone received the message")


class ParsedPublic(BaseModel):
    template_id: str
    kind: str
    amount_minor: int
    currency: str
    tail: str | None
    balance_minor: int | None
    counterparty: str | None


class NotificationPublic(BaseModel):
    id: uuid.UUID
    outcome: str = Field(
        description="`received` (a credit sent for matching), `ignored` (not a credit), "
        "`unparsed` (no template read it), or what became of it since"
    )
    parsed: ParsedPublic | None


@dataclass
class _Templates:
    compiled: list[Compiled]
    read_at: float = -1e9


async def templates(request: Request, services: Services) -> list[Compiled]:
    """The compiled templates, re-read at most every ``TEMPLATES_TTL_S`` (``app.state``)."""
    state = request.app.state
    cache: _Templates | None = getattr(state, "bank_templates", None)
    if cache is None:
        cache = state.bank_templates = _Templates([])
    if time.monotonic() - cache.read_at >= TEMPLATES_TTL_S:
        cache.compiled = await services.db(bank_templates.compiled_templates)
        cache.read_at = time.monotonic()
    return cache.compiled


def _read(text: str, sender: str, compiled: list[Compiled]) -> Parsed | None:
    try:
        return parse(text, sender, compiled).parsed
    except DomainError as error:  # three decimals, an unknown currency ...
        raise ApiError(422, error.code, error.message) from None


def _policy(session: Session, card_id: str) -> MatchPolicy:
    found = session.execute(
        select(CardPool.match_policy)
        .join(Card, Card.pool_id == CardPool.id)
        .where(Card.id == uuid.UUID(card_id))
    ).scalar_one()
    return MatchPolicy(found)


@router.post(
    "/notifications",
    status_code=status.HTTP_201_CREATED,
    summary="Forward a bank notification (SMS or push) received on the device",
    responses={
        200: {"model": NotificationPublic, "description": "Already stored: the same answer"},
        403: {
            "model": ErrorResponse,
            "description": "`device_revoked`; `device_card_mismatch`: the card is not this "
            "device's",
        },
        422: {
            "model": ErrorResponse,
            "description": "Invalid request; `invalid_amount_precision` (more decimals than "
            "the currency has), `invalid_amount_format`, `unknown_bank_currency`, "
            "`received_at_in_future`",
        },
    },
)
async def post_notification(
    body: NotificationCreate,
    device: CurrentDevice,
    services: ServicesDep,
    request: Request,
    response: Response,
) -> NotificationPublic:
    """Stored once; a parsed credit is matched by the card's desk to the open deposit it
    pays (ADR 0010). Nothing is stored when the request is refused."""
    if body.card_id != device.card_id:
        raise ApiError(403, "device_card_mismatch", "this device forwards another card")
    if body.received_at > datetime.now(UTC) + timedelta(seconds=MAX_FUTURE_S):
        raise ApiError(422, "received_at_in_future", "received_at is ahead of the server clock")
    parsed = _read(body.text, body.sender, await templates(request, services))
    new = notifications.NewNotification(
        device_id=device.device_id,
        card_id=device.card_id,
        device_notification_id=body.notification_id,
        text=body.text,
        sender=body.sender,
        received_at=body.received_at,
        parsed=parsed,
    )

    def write(session: Session) -> tuple[notifications.Stored, MatchPolicy]:
        return notifications.store(session, new), _policy(session, device.card_id)

    stored, policy = await services.db(write, commit=True)
    if stored.outcome == notifications.RECEIVED and parsed is not None:
        # sent again on a repeat too: a crash may have stored it and lost the send; the
        # desk decides each notification once (ADR 0010)
        await services.bus.send(
            MatchNotification(
                notification_id=stored.notification_id,
                pool_id=device.pool_id,
                card_id=device.card_id,
                device_id=device.device_id,
                amount_minor=parsed.amount_minor,
                currency=parsed.currency,
                received_at_ms=epoch_ms(body.received_at),
                policy=policy,
                grace_ms=int(services.settings.notification_grace_s * 1000),
            )
        )
    if not stored.created:
        response.status_code = status.HTTP_200_OK
    return NotificationPublic(
        id=stored.notification_id, outcome=stored.outcome, parsed=_public(parsed)
    )


def _public(parsed: Parsed | None) -> ParsedPublic | None:
    if parsed is None:
        return None
    fields: dict[str, Any] = {
        "template_id": parsed.template_id,
        "kind": parsed.kind.value,
        "amount_minor": parsed.amount_minor,
        "currency": parsed.currency,
        "tail": parsed.tail,
        "balance_minor": parsed.balance_minor,
        "counterparty": parsed.counterparty,
    }
    return ParsedPublic(**fields)
