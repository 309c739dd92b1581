"""Answer log: what the admin dashboard plots (cache hit, answer time, LLM tokens, cited sources).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("answer_log") as t:  # batch: SQLite cannot ALTER every column kind in place
        t.add_column(sa.Column("cached", sa.Boolean(), nullable=False, server_default=sa.false()))
        t.add_column(sa.Column("answer_ms", sa.Float(), nullable=False, server_default="0"))
        t.add_column(sa.Column("prompt_tokens", sa.Integer(), nullable=False, server_default="0"))
        t.add_column(sa.Column("completion_tokens", sa.Integer(), nullable=False, server_default="0"))
        t.add_column(sa.Column("cited", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("answer_log") as t:
        for name in ("cited", "completion_tokens", "prompt_tokens", "answer_ms", "cached"):
            t.drop_column(name)
