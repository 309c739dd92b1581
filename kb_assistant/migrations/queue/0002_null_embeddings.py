"""Embeddings stored as the JSON text 'null' (a 👎 ticket, every answered log row) become SQL NULL.

The models now store Python None as NULL (``JSON(none_as_null=True)``); rows written before kept 'null', which
``embedding IS NOT NULL`` admitted, so grouping an open question crashed on them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    cast = "CAST(embedding AS TEXT)" if op.get_bind().dialect.name == "postgresql" else "embedding"
    for table in ("tickets", "answer_log"):
        op.execute(f"UPDATE {table} SET embedding = NULL WHERE {cast} = 'null'")


def downgrade() -> None:
    pass  # NULL and 'null' meant the same: nothing to restore
