"""Semantic cache: entries, the answers served from them, refused pairs, counters.

The DDL the cache created for itself before it had migrations (``IF NOT EXISTS`` throughout), so a cache file
written by an earlier release is adopted as it is, rows included.

Revision ID: cache_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

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
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in ("cache_counters", "cache_refused", "cache_served", "cache_entries"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
