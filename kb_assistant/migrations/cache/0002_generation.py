"""The cache's generation: one number every change to the entries raises, in every process and replica.

A process keeps each KB's cached questions as an in-memory similarity matrix; it reloads them when the generation
has moved (SQLite's ``data_version`` did this for one file only, and has no Postgres counterpart).

Revision ID: cache_0002
Revises: cache_0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cache_0002"
down_revision = "cache_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "cache_generation",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.Integer, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "value": 0}])


def downgrade() -> None:
    op.drop_table("cache_generation")
