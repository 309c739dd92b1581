"""Alembic environment: run on start by ``kb_assistant.queue.store.migrate`` with the connection passed in."""

from __future__ import annotations

from alembic import context

from kb_assistant.queue.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # `alembic` on the command line: build an engine from the URL in the config
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
