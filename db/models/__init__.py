"""Keeper's durable record as SQLAlchemy models.

The schema itself is owned by the Alembic migrations in ``db/migrations``; these models must
describe exactly what the migrations build (``tests/integration/test_migrations.py`` compares
them). Triggers (ledger balance, append-only tables) exist only in the migrations.

Conventions, so the database itself refuses impossible states rather than trusting callers:

* money is ``BIGINT`` minor units in a ``*_minor`` column next to an ISO-4217 ``currency``;
  fees are basis points (``*_fee_bp``), never floats;
* enumerations are ``text`` plus a CHECK (cheaper to extend than PostgreSQL enums);
* every relationship is ``lazy="raise"``: an agent or console page that forgets to load what
  it needs fails loudly in tests instead of issuing hidden queries per row;
* rows that are edited by people (partners, cards) carry an optimistic-lock ``version``;
  orders carry the projector's event ``version`` instead (newer version wins, see
  ``Order.version``).

The package is split by subject (``base``, ``config``, ``access``, ``orders``, ``ledger``,
``audit``, ``callbacks``, ``turnover``, ``dead_letters``, ``disputes``, ``notifications``,
``second_factor``); import from ``db.models`` itself, which re-exports every public name.
Importing it registers every mapped class, so relationships across modules always resolve.
"""

from __future__ import annotations

from db.models.access import ApiNonce, ConsoleSession, ConsoleUser, PartnerApiKey
from db.models.audit import AuditLog
from db.models.base import (
    ACCOUNT_PATTERN,
    API_KEY_STATUSES,
    CARD_STATUSES,
    CONSOLE_ROLES,
    CURRENCY_PATTERN,
    NAMING_CONVENTION,
    ORDER_DIRECTIONS,
    ORDER_STATUSES,
    PAN_MASKED_PATTERN,
    PARTNER_STATUSES,
    POSTING_KINDS,
    SLUG_PATTERN,
    Base,
    CreatedAt,
    Currency,
    Money,
    UpdatedAt,
    matches,
    one_of,
)
from db.models.callbacks import CallbackDelivery, CallbackSecret
from db.models.config import Card, CardPool, Partner
from db.models.dead_letters import DeadLetter
from db.models.disputes import Dispute, DisputeReceipt
from db.models.ledger import BalanceSnapshot, LedgerPosting
from db.models.notifications import BankTemplate, Device, Notification, NotificationParse
from db.models.orders import Order, OrderEvent
from db.models.second_factor import LoginChallenge, RecoveryCode, SecondFactor
from db.models.turnover import CardAlert, CardTurnover

__all__ = [
    "ACCOUNT_PATTERN",
    "API_KEY_STATUSES",
    "CARD_STATUSES",
    "CONSOLE_ROLES",
    "CURRENCY_PATTERN",
    "NAMING_CONVENTION",
    "ORDER_DIRECTIONS",
    "ORDER_STATUSES",
    "PAN_MASKED_PATTERN",
    "PARTNER_STATUSES",
    "POSTING_KINDS",
    "SLUG_PATTERN",
    "ApiNonce",
    "AuditLog",
    "BalanceSnapshot",
    "BankTemplate",
    "Base",
    "CallbackDelivery",
    "CallbackSecret",
    "Card",
    "CardAlert",
    "CardPool",
    "CardTurnover",
    "ConsoleSession",
    "ConsoleUser",
    "CreatedAt",
    "Currency",
    "DeadLetter",
    "Device",
    "Dispute",
    "DisputeReceipt",
    "LedgerPosting",
    "LoginChallenge",
    "Money",
    "Notification",
    "NotificationParse",
    "Order",
    "OrderEvent",
    "Partner",
    "PartnerApiKey",
    "RecoveryCode",
    "SecondFactor",
    "UpdatedAt",
    "matches",
    "one_of",
]
