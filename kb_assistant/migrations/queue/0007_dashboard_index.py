"""The admin dashboard's counts from one index: ``ix_answer_log_dashboard`` holds the period, KB, outcome, cache,
rating, answer time and token columns, so its GROUP BY per day and outcome and its answer times never read the
answer-log rows (long with passages and embeddings; in SQLite these columns sit behind them).

Revision ID: 0007_dashboard
Revises: 0006_access_groups
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0007_dashboard"
down_revision = "0006_access_groups"
branch_labels = None
depends_on = None

COLUMNS = ["created_at", "kb", "answered", "reason", "cached", "rating", "answer_ms", "prompt_tokens",
           "completion_tokens"]  # fmt: skip


def upgrade() -> None:
    op.create_index("ix_answer_log_dashboard", "answer_log", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_answer_log_dashboard", table_name="answer_log")
