"""Semantic cache: entries, the answers served from them, refused pairs, counters.

On SQLite: the DDL the cache created for itself before it had migrations (``IF NOT EXISTS`` throughout), so a
cache file written by an earlier release is adopted as it is, rows included. On Postgres (``KB_DATABASE_URL``, where
no cache lived before): the same tables in Postgres types (an identity key, ``bytea``, double precision).

Revision ID: cache_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cache_0001"
down_revision = None
branch_labels = None
depends_on = None

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS cache_entries (
        id INTEGER PRIMARY KEY,
        kb TEXT NOT NULL, language TEXT NOT NULL, key TEXT NOT NULL, question TEXT NOT NULL,
        model TEXT NOT NULL, embedding BLOB NOT NULL,
        answer TEXT NOT NULL, chunk_ids TEXT NOT NULL, kb_version INTEGER NOT NULL, origin TEXT NOT NULL,
        created_at REAL NOT NULL, last_hit_at REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0,
        full_ms REAL NOT NULL DEFAULT 0, saved_ms REAL NOT NULL DEFAULT 0,
        UNIQUE (kb, language, key))""",
    "CREATE TABLE IF NOT EXISTS cache_served (answer_id TEXT PRIMARY KEY, entry_id INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS cache_served_entry ON cache_served (entry_id)",
    """CREATE TABLE IF NOT EXISTS cache_refused (kb TEXT, language TEXT, key TEXT, chunk_ids TEXT,
        PRIMARY KEY (kb, language, key, chunk_ids))""",
    "CREATE TABLE IF NOT EXISTS cache_counters (kb TEXT, name TEXT, value REAL NOT NULL, PRIMARY KEY (kb, name))",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in STATEMENTS:
            op.execute(statement)
        return
    text, real = sa.Text, sa.Double
    op.create_table(
        "cache_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        *(sa.Column(c, text, nullable=False) for c in ("kb", "language", "key", "question", "model")),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("answer", text, nullable=False),
        sa.Column("chunk_ids", text, nullable=False),
        sa.Column("kb_version", sa.Integer, nullable=False),
        sa.Column("origin", text, nullable=False),
        sa.Column("created_at", real, nullable=False),
        sa.Column("last_hit_at", real, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False, server_default="0"),
        sa.Column("full_ms", real, nullable=False, server_default="0"),
        sa.Column("saved_ms", real, nullable=False, server_default="0"),
        sa.UniqueConstraint("kb", "language", "key"),
    )
    op.create_table(
        "cache_served",
        sa.Column("answer_id", text, primary_key=True),
        sa.Column("entry_id", sa.Integer, nullable=False),
    )
    op.create_index("cache_served_entry", "cache_served", ["entry_id"])
    op.create_table(
        "cache_refused", *(sa.Column(c, text, primary_key=True) for c in ("kb", "language", "key", "chunk_ids"))
    )
    op.create_table(
        "cache_counters",
        sa.Column("kb", text, primary_key=True),
        sa.Column("name", text, primary_key=True),
        sa.Column("value", real, nullable=False),
    )


def downgrade() -> None:
    for table in ("cache_counters", "cache_refused", "cache_served", "cache_entries"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
