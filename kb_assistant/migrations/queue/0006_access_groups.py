"""Access groups (issue 20): a ticket keeps its askers' scope (only questions of one scope share a ticket), the
answer log the asker's, and an API key the groups its callers ask as.

Rows written before have the empty scope (no group) and keys no group: what they were able to see then.

Revision ID: 0006_access_groups
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_access_groups"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("scope", sa.String(1000), nullable=False, server_default=""))
    with op.batch_alter_table("answer_log") as batch:
        batch.add_column(sa.Column("scope", sa.String(1000), nullable=False, server_default=""))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("groups", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("groups")
    with op.batch_alter_table("answer_log") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("scope")
