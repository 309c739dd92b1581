"""Human queue: tickets, ticket requests, answer log, agent users, queue lock.

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kb", sa.String(63), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("standalone_question", sa.Text(), nullable=False),
        sa.Column("normalized", sa.String(500), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(32)),
        sa.Column("conversation", sa.JSON(), nullable=False),
        sa.Column("passages", sa.JSON(), nullable=False),
        sa.Column("embedding", sa.JSON()),
        sa.Column("bad_answer", sa.Text()),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("answer", sa.Text()),
        sa.Column("answered_by", sa.String(100)),
        sa.Column("promoted_source", sa.String(200)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("claimed_at", TZ),
        sa.Column("answered_at", TZ),
        sa.Column("closed_at", TZ),
        sa.Column("promoted_at", TZ),
    )
    for col in ("kb", "normalized", "reason", "status", "created_at"):
        op.create_index(f"ix_tickets_{col}", "tickets", [col])

    op.create_table(
        "ticket_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("ref", sa.String(40), unique=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(100)),
        sa.Column("user", sa.String(100)),
        sa.Column("answer_id", sa.String(32)),
        sa.Column("comment", sa.Text()),
        sa.Column("created_at", TZ, nullable=False),
    )
    for col in ("ticket_id", "session_id", "answer_id"):
        op.create_index(f"ix_ticket_requests_{col}", "ticket_requests", [col])

    op.create_table(
        "answer_log",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kb", sa.String(63), nullable=False),
        sa.Column("session_id", sa.String(100)),
        sa.Column("user", sa.String(100)),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("standalone_question", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("passages", sa.JSON(), nullable=False),
        sa.Column("conversation", sa.JSON(), nullable=False),
        sa.Column("embedding", sa.JSON()),
        sa.Column("ticket_id", sa.Integer()),
        sa.Column("rating", sa.String(8)),
        sa.Column("feedback_comment", sa.Text()),
        sa.Column("created_at", TZ, nullable=False),
    )
    for col in ("kb", "session_id", "answered", "created_at"):
        op.create_index(f"ix_answer_log_{col}", "answer_log", [col])

    op.create_table(
        "agent_users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )

    lock = op.create_table(
        "queue_lock",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("counter", sa.Integer(), nullable=False),
    )
    op.bulk_insert(lock, [{"id": 1, "counter": 0}])


def downgrade() -> None:
    for table in ("queue_lock", "agent_users", "answer_log", "ticket_requests", "tickets"):
        op.drop_table(table)
