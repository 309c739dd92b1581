"""Alembic environment shared by every store's history (``kb_assistant.db.Migrations``): the commands run on the
connection the store passes in, and record the revision in the store's own version table."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through kb_assistant.db.Migrations, which passes the connection in")
context.configure(
    connection=connection,
    target_metadata=config.attributes.get("metadata"),
    version_table=config.attributes.get("version_table", "alembic_version"),
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
