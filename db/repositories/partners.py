"""Partners and their terms (fees per direction, card pool, callback URL).

The API reads :class:`PartnerTerms` on every order and copies them into the ``order.open``
command, so a tariff change never races an order in flight. Every change is audited and bumps
the row's optimistic-lock ``version``, which travels on ``config-partners``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import PARTNER_STATUSES, BalanceSnapshot, CardPool, Order, Partner
from db.repositories import audit
from db.repositories._common import (
    UNSET,
    Unset,
    check_version,
    domain_checked,
    insert,
    slug,
    text,
)
from db.repositories.errors import AlreadyExists, InvalidInput, NotFound, PartnerBusy
from domain.money import validate_fee_bp
from domain.orders import TERMINAL
from schemas.cards import PartnerConfigured, PartnerStatus

_CALLBACK_URL: Final = re.compile(r"https?://\S{1,2000}")


@dataclass(frozen=True, slots=True)
class PartnerTerms:
    """What Keeper charges a partner and where its deposits are routed."""

    partner_id: str
    name: str
    status: str
    deposit_fee_bp: int
    withdrawal_fee_bp: int
    pool_id: str | None
    callback_url: str | None
    version: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _terms(row: Partner) -> PartnerTerms:
    return PartnerTerms(
        partner_id=row.id,
        name=row.name,
        status=row.status,
        deposit_fee_bp=row.deposit_fee_bp,
        withdrawal_fee_bp=row.withdrawal_fee_bp,
        pool_id=row.pool_id,
        callback_url=row.callback_url,
        version=row.version,
    )


def _status(value: str) -> str:
    if value not in PARTNER_STATUSES:
        raise InvalidInput(f"partner status must be one of {', '.join(PARTNER_STATUSES)}")
    return value


def _callback_url(value: str | None) -> str | None:
    if value is not None and not _CALLBACK_URL.fullmatch(value):
        raise InvalidInput("callback_url must be an http(s) URL without spaces")
    return value


def _pool(session: Session, pool_id: str | None) -> str | None:
    if pool_id is not None and session.get(CardPool, pool_id) is None:
        raise NotFound(f"card pool {pool_id!r} does not exist")
    return pool_id


def _must_be_idle(session: Session, partner_id: str) -> None:
    """Refuse to move a partner to another pool while it has money or open orders.

    A partner's balance lives at its pool's desk, beside the deposits that credit it, and an
    order stays at the desk it was opened at (ADR 0005): moving a partner with a balance or
    an order in flight would split its money across two desks. PostgreSQL trails the desks
    by a moment, so an order opened in that moment can still slip through; the ADR says so.
    """
    open_orders = session.scalar(
        select(func.count())
        .select_from(Order)
        .where(
            Order.partner_id == partner_id,
            Order.status.not_in([status.value for status in TERMINAL]),
        )
    )
    money = session.scalar(
        select(func.count())
        .select_from(BalanceSnapshot)
        .where(
            BalanceSnapshot.partner_id == partner_id,
            (BalanceSnapshot.available_minor != 0) | (BalanceSnapshot.held_minor != 0),
        )
    )
    if open_orders or money:
        raise PartnerBusy(
            f"partner {partner_id!r} has {open_orders or 0} open orders and a balance in "
            f"{money or 0} currencies at its pool: settle them before moving it to another pool"
        )


def get_partner(session: Session, partner_id: str) -> PartnerTerms | None:
    row = session.get(Partner, partner_id)
    return None if row is None else _terms(row)


def list_partners(session: Session) -> list[PartnerTerms]:
    rows = session.scalars(select(Partner).order_by(Partner.id))
    return [_terms(row) for row in rows]


def create_partner(
    session: Session,
    *,
    partner_id: str,
    name: str,
    deposit_fee_bp: int,
    withdrawal_fee_bp: int,
    pool_id: str | None = None,
    callback_url: str | None = None,
    status: str = "active",
    actor: str,
) -> PartnerTerms:
    """Create a partner (``AlreadyExists`` if the id is taken, ``NotFound`` for no pool)."""
    row = Partner(
        id=slug("partner_id", partner_id),
        name=text("name", name),
        status=_status(status),
        deposit_fee_bp=domain_checked(validate_fee_bp, deposit_fee_bp),
        withdrawal_fee_bp=domain_checked(validate_fee_bp, withdrawal_fee_bp),
        pool_id=_pool(session, pool_id),
        callback_url=_callback_url(callback_url),
    )
    insert(
        session,
        row,
        {"pk_partners": lambda: AlreadyExists(f"partner {partner_id!r} already exists")},
    )
    terms = _terms(row)
    audit.record(
        session,
        actor=actor,
        action="partner.create",
        entity="partner",
        entity_id=partner_id,
        before=None,
        after=terms.as_dict(),
    )
    return terms


def update_partner(
    session: Session,
    partner_id: str,
    *,
    actor: str,
    expected_version: int | None = None,
    name: str | Unset = UNSET,
    status: str | Unset = UNSET,
    deposit_fee_bp: int | Unset = UNSET,
    withdrawal_fee_bp: int | Unset = UNSET,
    pool_id: str | Unset | None = UNSET,
    callback_url: str | Unset | None = UNSET,
) -> PartnerTerms:
    """Change the given fields; untouched arguments stay as they are.

    ``expected_version`` (the version the editor saw) turns a concurrent edit into
    ``StaleVersion`` instead of a silent overwrite. A call that changes nothing writes
    nothing: no audit row, no version bump.
    """
    row = session.get(Partner, partner_id, with_for_update=True)
    if row is None:
        raise NotFound(f"partner {partner_id!r} does not exist")
    check_version("partner", partner_id, expected_version, row.version)
    before = _terms(row)
    if not isinstance(name, Unset):
        row.name = text("name", name)
    if not isinstance(status, Unset):
        row.status = _status(status)
    if not isinstance(deposit_fee_bp, Unset):
        row.deposit_fee_bp = domain_checked(validate_fee_bp, deposit_fee_bp)
    if not isinstance(withdrawal_fee_bp, Unset):
        row.withdrawal_fee_bp = domain_checked(validate_fee_bp, withdrawal_fee_bp)
    if not isinstance(pool_id, Unset) and pool_id != row.pool_id:
        _must_be_idle(session, partner_id)
        row.pool_id = _pool(session, pool_id)
    if not isinstance(callback_url, Unset):
        row.callback_url = _callback_url(callback_url)
    if dataclasses.replace(_terms(row), version=before.version) == before:
        return before
    session.flush()  # bumps version (optimistic lock) and refreshes updated_at
    after = _terms(row)
    audit.record(
        session,
        actor=actor,
        action="partner.update",
        entity="partner",
        entity_id=partner_id,
        before=before.as_dict(),
        after=after.as_dict(),
    )
    return after


def partner_config(terms: PartnerTerms) -> PartnerConfigured:
    """The ``config.partner`` message that tells the agents about ``terms``."""
    return PartnerConfigured(
        partner_id=terms.partner_id,
        status=PartnerStatus(terms.status),
        deposit_fee_bp=terms.deposit_fee_bp,
        withdrawal_fee_bp=terms.withdrawal_fee_bp,
        pool_id=terms.pool_id,
        callback_url=terms.callback_url,
        version=terms.version,
    )


def all_partner_configs(session: Session) -> list[PartnerConfigured]:
    return [partner_config(terms) for terms in list_partners(session)]
