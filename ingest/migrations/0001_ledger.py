"""Ingest ledger: sources, documents, runs, KB versions.

A ledger written before the ledger had migrations already holds these tables (``create_all`` made them): they
are kept as they are, rows included, and the database is recorded at this revision.

Revision ID: ledger_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ledger_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "sources" not in existing:
        op.create_table(
            "sources",
            sa.Column("kb", sa.String(63), primary_key=True),
            sa.Column("root", sa.Text(), primary_key=True),
            sa.Column("added_at", sa.Float(), nullable=False),
            sa.Column("last_synced_at", sa.Float(), nullable=True),
        )
    if "documents" not in existing:
        op.create_table(
            "documents",
            sa.Column("kb", sa.String(63), primary_key=True),
            sa.Column("root", sa.Text(), primary_key=True),
            sa.Column("path", sa.Text(), primary_key=True),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
            sa.Column("content_hash", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("chunk_ids", sa.JSON(), nullable=False),
            sa.Column("config", sa.String(64), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
            sa.Column("error", sa.Text(), nullable=True),
        )
    if "runs" not in existing:
        op.create_table(
            "runs",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("kb", sa.String(63), nullable=False),
            sa.Column("pid", sa.Integer(), nullable=False),
            sa.Column("started_at", sa.Float(), nullable=False),
            sa.Column("finished_at", sa.Float(), nullable=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("report", sa.JSON(), nullable=True),
        )
        op.create_index("ix_runs_kb", "runs", ["kb"])
    if "versions" not in existing:
        op.create_table(
            "versions",
            sa.Column("kb", sa.String(63), primary_key=True),
            sa.Column("version", sa.Integer(), primary_key=True),
            sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("added", sa.JSON(), nullable=False),
            sa.Column("removed", sa.JSON(), nullable=False),
        )


def downgrade() -> None:
    for table in ("versions", "runs", "documents", "sources"):
        op.drop_table(table)
