"""The cache's generation (one number every change to the entries raises, in every process and replica), and when
each answer was served from an entry.

A process keeps each KB's cached questions as an in-memory similarity matrix; it reloads them when the generation
has moved (SQLite's ``data_version`` did this for one file only, and has no Postgres counterpart). ``served_at``
orders the answers served from an entry, newest first, where SQLite's rowid did (Postgres has none); rows served
before it are NULL and come last.

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
    op.add_column("cache_served", sa.Column("served_at", sa.Double, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cache_served") as batch:
        batch.drop_column("served_at")
    op.drop_table("cache_generation")
