"""Partner users: a console role bound to one partner, for the partner portal.

* ``console_users.role`` may be ``partner`` as well;
* ``console_users.partner_id`` (FK ``partners.id``, indexed) names the partner a ``partner``
  user belongs to; the CHECK ``(role = 'partner') = (partner_id IS NOT NULL)`` makes a
  partner user without a partner, or a staff user with one, impossible to store.
* ``ix_ledger_postings_partner_id_posted_at`` replaces ``ix_ledger_postings_partner_id``: a
  partner's newest postings (the portal's ledger) read from the index instead of sorting
  every posting of the partner; the leading column still serves every lookup by partner, so
  the projector maintains one index per posting, as before.

The downgrade deletes partner users (their sessions go with them, ``ON DELETE CASCADE``):
the older schema has no way to hold them.

Self-contained like 0001: it does not import ``db.models``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("console_users", sa.Column("partner_id", sa.Text(), nullable=True))
    op.create_foreign_key(
        op.f("fk_console_users_partner_id_partners"),
        "console_users",
        "partners",
        ["partner_id"],
        ["id"],
    )
    op.create_index("ix_console_users_partner_id", "console_users", ["partner_id"])
    op.drop_constraint(op.f("ck_console_users_role"), "console_users", type_="check")
    op.create_check_constraint(
        op.f("ck_console_users_role"),
        "console_users",
        "role IN ('admin', 'operator', 'analyst', 'partner')",
    )
    op.create_check_constraint(
        op.f("ck_console_users_partner_iff_partner_role"),
        "console_users",
        "(role = 'partner') = (partner_id IS NOT NULL)",
    )
    op.create_index(
        "ix_ledger_postings_partner_id_posted_at", "ledger_postings", ["partner_id", "posted_at"]
    )
    op.drop_index("ix_ledger_postings_partner_id", table_name="ledger_postings")


def downgrade() -> None:
    op.create_index("ix_ledger_postings_partner_id", "ledger_postings", ["partner_id"])
    op.drop_index("ix_ledger_postings_partner_id_posted_at", table_name="ledger_postings")
    op.execute("DELETE FROM console_users WHERE role = 'partner'")
    op.drop_constraint(
        op.f("ck_console_users_partner_iff_partner_role"), "console_users", type_="check"
    )
    op.drop_constraint(op.f("ck_console_users_role"), "console_users", type_="check")
    op.create_check_constraint(
        op.f("ck_console_users_role"),
        "console_users",
        "role IN ('admin', 'operator', 'analyst')",
    )
    op.drop_index("ix_console_users_partner_id", table_name="console_users")
    op.drop_constraint(
        op.f("fk_console_users_partner_id_partners"), "console_users", type_="foreignkey"
    )
    op.drop_column("console_users", "partner_id")
