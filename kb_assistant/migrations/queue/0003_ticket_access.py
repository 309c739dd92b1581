"""Each ticket request keeps the SHA-256 of the token its asker reads the ticket with.

Requests made before have none: only agents read those tickets (their askers still see agents' answers in the
chat session that asked).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_requests") as batch:
        batch.add_column(sa.Column("access_hash", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("ticket_requests") as batch:
        batch.drop_column("access_hash")
