"""Access groups per source: ``sources.groups`` (JSON list; NULL: visible to everyone who may use the KB).

Revision ID: ledger_0002_source_groups
Revises: ledger_0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ledger_0002_source_groups"
down_revision = "ledger_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("sources")}
    if "groups" not in columns:  # a ledger adopted by ledger_0001 from this release's models already has it
        with op.batch_alter_table("sources") as batch:
            batch.add_column(sa.Column("groups", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("groups")
