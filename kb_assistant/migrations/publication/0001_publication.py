"""Published KB state: each KB's published version (one row per KB) and its chunks with their keyword tokens and
the access groups a chunk is limited to.

A chunk row says from which version it is live (``added_version``) and, once removed, from which it no longer is
(``removed_version``): a version's live set is read from the rows as they stand, and a publish writes only what
changed.

Revision ID: publication_0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "publication_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "published_kbs",
        sa.Column("kb", sa.String(63), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stamp", sa.String(32), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("tokenizer", sa.String(64), nullable=False),
        sa.Column("published_at", sa.Float(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
    )
    op.create_table(
        "published_chunks",
        sa.Column("kb", sa.String(63), primary_key=True),
        sa.Column("chunk_id", sa.String(255), primary_key=True),
        sa.Column("tokens", sa.JSON(), nullable=False),
        sa.Column("added_version", sa.Integer(), nullable=False),
        sa.Column("removed_version", sa.Integer(), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=True),
    )
    op.create_index("ix_published_chunks_removed", "published_chunks", ["kb", "removed_version"])


def downgrade() -> None:
    op.drop_index("ix_published_chunks_removed", "published_chunks")
    op.drop_table("published_chunks")
    op.drop_table("published_kbs")
