"""Alembic environment: run migrations on the connection the hub hands over."""

from __future__ import annotations

from alembic import context

from hub.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "hub migrations run through hub.store.Store.migrate(), which passes a connection"
    )
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
