"""What a partner user may change in the portal, each scoped to its own partner and audited.

Every action first locks the object *with the partner in the WHERE clause*; an object of
another partner is refused with the very :class:`NotFound` an unknown id gets, so nothing
tells a partner that the id exists. The change itself is the admin repositories' own
(:mod:`~db.repositories.api_keys`, :mod:`~db.repositories.callbacks`,
:mod:`~db.repositories.partners`), which write the audit row in the same transaction with
the partner user as the actor. Callers commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.crypto import SecretBox
from db.models import CallbackDelivery, CallbackSecret, PartnerApiKey
from db.repositories import api_keys, audit, callbacks, partners
from db.repositories._common import as_uuid
from db.repositories.errors import NotFound
from db.repositories.portal import PartnerScope


def _own_key(session: Session, scope: PartnerScope, key_id: str) -> None:
    found = session.scalar(
        select(PartnerApiKey.key_id)
        .where(PartnerApiKey.key_id == key_id, PartnerApiKey.partner_id == scope.partner_id)
        .with_for_update()
    )
    if found is None:
        raise NotFound(f"API key {key_id!r} does not exist")


def issue_api_key(session: Session, box: SecretBox, scope: PartnerScope) -> tuple[str, str]:
    """A new active key for the partner: ``(key_id, secret)``; show the secret once."""
    return api_keys.issue_api_key(session, box, scope.partner_id, scope.actor)


def rotate_api_key(
    session: Session, box: SecretBox, scope: PartnerScope, key_id: str
) -> tuple[str, str]:
    """Replace one of the partner's keys at once (the old one revoked in the same
    transaction): ``(new key_id, secret)``."""
    _own_key(session, scope, key_id)
    return api_keys.rotate_api_key(session, box, key_id, scope.actor)


def revoke_api_key(session: Session, scope: PartnerScope, key_id: str) -> bool:
    """Revoke one of the partner's keys; ``False`` if it was revoked already."""
    _own_key(session, scope, key_id)
    return api_keys.revoke_api_key(session, key_id, scope.actor)


def issue_callback_secret(session: Session, box: SecretBox, scope: PartnerScope) -> tuple[str, str]:
    """A new active callback secret: ``(secret_id, secret)``; show the secret once."""
    return callbacks.issue_callback_secret(session, box, scope.partner_id, scope.actor)


def revoke_callback_secret(session: Session, scope: PartnerScope, secret_id: str) -> bool:
    """Stop signing with one of the partner's secrets; ``False`` if revoked already."""
    found = session.scalar(
        select(CallbackSecret.secret_id)
        .where(
            CallbackSecret.secret_id == secret_id,
            CallbackSecret.partner_id == scope.partner_id,
        )
        .with_for_update()
    )
    if found is None:
        raise NotFound(f"callback secret {secret_id!r} does not exist")
    return callbacks.revoke_callback_secret(session, secret_id, scope.actor)


def resend_delivery(
    session: Session,
    scope: PartnerScope,
    delivery_id: uuid.UUID | str,
    *,
    window_s: float = callbacks.DEFAULT_WINDOW_S,
) -> callbacks.DeliveryView:
    """Make one of the partner's finished deliveries pending again (see
    :func:`db.repositories.callbacks.resend`)."""
    ident = as_uuid(delivery_id)
    found = (
        None
        if ident is None
        else session.scalar(
            select(CallbackDelivery.delivery_id)
            .where(
                CallbackDelivery.delivery_id == ident,
                CallbackDelivery.partner_id == scope.partner_id,
            )
            .with_for_update()
        )
    )
    if found is None:
        raise NotFound(f"callback delivery {delivery_id} does not exist")
    return callbacks.resend(session, found, scope.actor, window_s=window_s)


def set_callback_url(
    session: Session, scope: PartnerScope, url: str | None, *, expected_version: int | None
) -> partners.PartnerTerms:
    """Change the partner's callback URL (``None``: none); nothing else of its terms."""
    return partners.update_partner(
        session,
        scope.partner_id,
        actor=scope.actor,
        expected_version=expected_version,
        callback_url=url,
    )


def record_export(
    session: Session, scope: PartnerScope, what: str, filters: Mapping[str, Any], rows: int
) -> None:
    """Audit a download (``portal.export``): which list, under which filters, how many rows."""
    audit.record(
        session,
        actor=scope.actor,
        action="portal.export",
        entity=what,
        entity_id=scope.partner_id,
        before=None,
        after={"partner_id": scope.partner_id, "filters": dict(filters), "rows": rows},
    )


__all__ = [
    "issue_api_key",
    "issue_callback_secret",
    "record_export",
    "resend_delivery",
    "revoke_api_key",
    "revoke_callback_secret",
    "rotate_api_key",
    "set_callback_url",
]
