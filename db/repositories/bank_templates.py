"""Bank message templates: the rows admins edit, and the compiled set the intake parses with.

A template is saved only if the linear-time engine (:mod:`db.regex_engine`) compiles it and
the core accepts its fields (:class:`domain.bank_messages.Template`); every save is audited
and bumps ``version`` (optimistic lock against two admins editing at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import BankTemplate
from db.regex_engine import ENGINE
from db.repositories import audit
from db.repositories._common import check_version
from db.repositories.errors import InvalidInput
from domain.bank_messages import (
    Compiled,
    MessageKind,
    Template,
    TemplateError,
    compile_templates,
)


def to_template(row: BankTemplate) -> Template:
    return Template(
        template_id=row.template_id,
        bank=row.bank,
        kind=MessageKind(row.kind),
        pattern=row.pattern,
        senders=tuple(str(s) for s in row.senders),
        decimal_sep=row.decimal_sep,
        currency=row.currency,
        priority=row.priority,
        enabled=row.enabled,
    )


def image(row: BankTemplate) -> dict[str, Any]:
    return {
        "template_id": row.template_id,
        "bank": row.bank,
        "kind": row.kind,
        "pattern": row.pattern,
        "senders": list(row.senders),
        "decimal_sep": row.decimal_sep,
        "currency": row.currency,
        "priority": row.priority,
        "enabled": row.enabled,
        "version": row.version,
    }


def list_templates(session: Session) -> list[BankTemplate]:
    query = select(BankTemplate).order_by(BankTemplate.priority, BankTemplate.template_id)
    return list(session.scalars(query))


def compiled_templates(session: Session) -> list[Compiled]:
    """Every enabled template, compiled, in the order the parser tries them."""
    return compile_templates((to_template(row) for row in list_templates(session)), ENGINE)


def checked(template: Template) -> Template:
    """``template`` if the engine compiles it, else :class:`InvalidInput`."""
    try:
        compile_templates([template], ENGINE)
    except TemplateError as error:
        raise InvalidInput(error.message) from None
    return template


def build(**fields: Any) -> Template:
    """A template from form fields, refused with :class:`InvalidInput` if malformed."""
    try:
        senders = fields.pop("senders", ())
        return checked(Template(**fields, senders=tuple(s for s in senders if s)))
    except (TemplateError, ValueError) as error:
        raise InvalidInput(str(error)) from None


def save_template(
    session: Session, template: Template, actor: str, expected_version: int | None = None
) -> BankTemplate:
    """Create or update ``template`` (checked first); audited."""
    checked(template)
    row = session.get(BankTemplate, template.template_id, with_for_update=True)
    before = None if row is None else image(row)
    if row is None:
        row = BankTemplate(template_id=template.template_id, version=1)
        session.add(row)
    else:
        check_version("bank_template", template.template_id, expected_version, row.version)
        row.version += 1
    row.bank = template.bank
    row.kind = template.kind.value
    row.pattern = template.pattern
    row.senders = list(template.senders)
    row.decimal_sep = template.decimal_sep
    row.currency = template.currency
    row.priority = template.priority
    row.enabled = template.enabled
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="bank_template.save",
        entity="bank_template",
        entity_id=template.template_id,
        before=before,
        after=image(row),
    )
    return row


def seed(session: Session, templates: Sequence[Template], actor: str) -> int:
    """Add the templates not stored yet (the shipped set, for a database made before 0010's
    seed or emptied by hand); returns how many were added."""
    added = 0
    for template in templates:
        if session.get(BankTemplate, template.template_id) is None:
            save_template(session, template, actor)
            added += 1
    return added
