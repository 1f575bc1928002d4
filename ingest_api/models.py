"""Request and response bodies of the HTTP API (schema families: ``*Create``, ``*Public``).

Amounts are integers of minor units with an ISO 4217 currency; unknown fields are refused so
a partner's typo is an error, not a silently ignored option. Every string a request carries
follows the text rule of :mod:`domain.text` (see :mod:`ingest_api.text_types`): ids are
``Identifier``, human text ``Label`` or ``FreeText``, passwords and card numbers ``Secret``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, StrictInt

from domain.disputes import DisputeStatus, DisputeVerdict, OpenedBy
from domain.money import MAX_AMOUNT_MINOR
from domain.orders import MAX_TTL_S, MIN_TTL_S, DeclineReason, Direction, OrderStatus
from domain.text import LABEL
from ingest_api.text_types import FreeText, Identifier, Label, Secret, text_validator

DEFAULT_TTL_S = 900

#: A URL is text first: a control character or a decomposed letter is refused before the URL
#: parser would quietly percent-encode it.
CallbackUrl = Annotated[HttpUrl, BeforeValidator(text_validator(LABEL))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderCreate(_Strict):
    direction: Direction
    amount_minor: Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_MINOR)]
    currency: Annotated[Label, Field(pattern=r"^[A-Z]{3}$")]
    partner_order_id: Annotated[
        Identifier,
        Field(
            min_length=1,
            max_length=128,
            description=(
                "your id of the order: no control or invisible format characters, NFC, "
                "not blank, no leading or trailing whitespace"
            ),
        ),
    ]
    ttl_s: Annotated[StrictInt, Field(ge=MIN_TTL_S, le=MAX_TTL_S)] = DEFAULT_TTL_S
    callback_url: CallbackUrl | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "direction": "deposit",
                    "amount_minor": 150000,
                    "currency": "RUB",
                    "partner_order_id": "inv-1001",
                    "ttl_s": 900,
                }
            ]
        },
    )


class CardToPay(BaseModel):
    """The platform card a deposit's payer transfers to."""

    number: str
    masked: str
    bank: str | None = None
    holder: str | None = None


class OrderPublic(BaseModel):
    uid: uuid.UUID
    partner_order_id: str
    direction: Direction
    status: OrderStatus
    amount_minor: int
    fee_minor: int
    currency: str
    created_at: datetime
    expires_at: datetime
    updated_at: datetime
    decline_reason: DeclineReason | None = None
    card: CardToPay | None = None
    payer_card_masked: str | None = None
    payment_url: str
    status_url: str


class OrderAccepted(BaseModel):
    """``202``: the order is accepted and still being reserved; poll ``status_url``."""

    uid: uuid.UUID
    status: Literal["pending"] = "pending"
    status_url: str
    payment_url: str


class OrderPage(BaseModel):
    items: list[OrderPublic]
    next_after: str | None = Field(
        None,
        description=(
            "pass as `after` to get the next page; null on the last page. Opaque and signed: "
            "valid only unchanged and only for the partner it was issued to"
        ),
    )


class BalancePublic(BaseModel):
    currency: str
    available_minor: int
    held_minor: int
    updated_at: datetime | None = None


class BalanceList(BaseModel):
    partner_id: str
    balances: list[BalancePublic]


class PayerConfirm(_Strict):
    """Body of the payer's confirmation; ``card_number`` only for a withdrawal."""

    card_number: Annotated[Secret, Field(min_length=12, max_length=30)] | None = None


class PayerStatus(BaseModel):
    """What the payment form may show: no partner data beyond the order's own terms."""

    uid: uuid.UUID
    direction: Direction
    status: OrderStatus
    amount_minor: int
    currency: str
    expires_at: datetime
    card: CardToPay | None = None
    payer_card_masked: str | None = None


class LoginRequest(_Strict):
    username: Annotated[Identifier, Field(min_length=1, max_length=64)]
    password: Annotated[Secret, Field(min_length=1, max_length=256)]


class SessionPublic(BaseModel):
    """A session: send ``token`` as ``Authorization: Bearer <token>``."""

    token: str
    username: str
    role: str
    expires_at: datetime
    second_factor_enrolment_required: bool = Field(
        False,
        description="the role must have two-factor sign-in and the user has none yet: until "
        "it is set up (in the console, *My account*), every call but sign-out and password "
        "change is answered `403 second_factor_enrolment_required`",
    )
    password_change_required: bool = Field(
        False,
        description="an admin forced a password reset: until `POST /v1/auth/password`, "
        "every call but sign-out is answered `403 password_change_required`",
    )


class SecondFactorChallenge(BaseModel):
    """The password was right and the user has two-factor sign-in: no session yet. Post
    ``challenge`` with a code to ``POST /v1/auth/login/second-factor`` before
    ``expires_at``."""

    second_factor: Literal["totp"] = "totp"
    challenge: str
    expires_at: datetime


class SecondFactorLogin(_Strict):
    challenge: Annotated[Secret, Field(min_length=1, max_length=128)]
    code: Annotated[
        Secret,
        Field(
            min_length=1,
            max_length=64,
            description="the 6 digits the authenticator app shows, or one unused recovery "
            "code (`xxxx-xxxx-xxxx`)",
        ),
    ]


class PasswordChange(_Strict):
    current_password: Annotated[Secret, Field(min_length=1, max_length=256)]
    new_password: Annotated[Secret, Field(min_length=10, max_length=256)]


class DecisionCreate(_Strict):
    verdict: Literal["approve", "reject", "fail"]
    reason: Annotated[FreeText, Field(max_length=500)] = ""


class PaymentSeen(_Strict):
    """An operator's confirmation that a deposit was paid: the bank notification attached to
    it (on the console's *Bank notifications* page) is the evidence."""

    notification_id: uuid.UUID


class PaymentSeenPublic(BaseModel):
    uid: uuid.UUID
    status: OrderStatus


class QueueItem(BaseModel):
    """An order awaiting a decision, as the operator console lists it."""

    uid: uuid.UUID
    partner_id: str
    partner_order_id: str
    direction: Direction
    amount_minor: int
    fee_minor: int
    currency: str
    card_masked: str | None = Field(None, description="the platform's card (deposit)")
    card_bank: str | None = None
    payer_card_masked: str | None = Field(None, description="the payer's card (withdrawal)")
    created_at: datetime
    waiting_since: datetime = Field(description="when the payer confirmed")
    waited_s: int = Field(description="seconds since `waiting_since`, when this was read")


class OperatorQueue(BaseModel):
    items: list[QueueItem] = Field(description="oldest first")


class DecisionPublic(BaseModel):
    uid: uuid.UUID
    status: OrderStatus
    decided_by: str | None
    decision_reason: str | None


class DisputePublic(BaseModel):
    """A dispute as its partner sees it (and as its callbacks carry it)."""

    dispute_id: uuid.UUID
    order_uid: uuid.UUID
    partner_order_id: str
    status: DisputeStatus
    opened_by: OpenedBy
    amount_minor: int
    currency: str
    comment: str | None
    created_at: datetime
    deadline_at: datetime = Field(description="when an operator must have settled it")
    resolved_at: datetime | None
    resolution_reason: str | None = Field(description="why it was rejected, if it was")


class PayerDispute(BaseModel):
    """What the payer sees of the dispute on their order (nothing about the partner)."""

    status: DisputeStatus
    created_at: datetime
    deadline_at: datetime
    resolution_reason: str | None


class DisputeDecisionCreate(_Strict):
    verdict: DisputeVerdict
    reason: Annotated[FreeText, Field(max_length=500)] = ""


class DisputeDecisionPublic(BaseModel):
    dispute_id: uuid.UUID
    status: DisputeStatus
    credit_sent: bool = Field(
        description="for an acceptance: the late credit is on its way to the ledger"
    )
