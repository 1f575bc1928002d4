"""The one writer of ``audit_log``: who changed what, with before and after images.

Called by the repositories in the transaction of the change itself, so a change and its audit
row commit or roll back together. Images are JSON-safe dicts and never hold secrets, hashes or
full card numbers (callers pass views, not rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from db.models import AuditLog


def _json_safe(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def image(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A before/after image that JSONB accepts (dates, datetimes and UUIDs as strings)."""
    if values is None:
        return None
    return {str(key): _json_safe(item) for key, item in values.items()}


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """Append one audit row (flushed with the caller's transaction)."""
    if not actor.strip():
        raise ValueError("an audited change needs an actor")
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            entity=entity,
            entity_id=entity_id,
            before=image(before),
            after=image(after),
        )
    )
