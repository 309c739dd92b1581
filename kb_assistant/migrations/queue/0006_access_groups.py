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
    # plain ALTER TABLE (no batch copy): ticket_requests holds a foreign key to tickets, which SQLite will not let
    # a batch migration drop and recreate
    op.add_column("tickets", sa.Column("scope", sa.String(1000), nullable=False, server_default=""))
    op.add_column("answer_log", sa.Column("scope", sa.String(1000), nullable=False, server_default=""))
    op.add_column("api_keys", sa.Column("groups", sa.JSON(), nullable=True))


def downgrade() -> None:  # SQLite ≥ 3.35 drops a column in place
    op.drop_column("api_keys", "groups")
    op.drop_column("answer_log", "scope")
    op.drop_column("tickets", "scope")
