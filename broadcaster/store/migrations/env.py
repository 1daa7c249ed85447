"""Alembic environment: always run on the connection broadcaster hands in."""

from __future__ import annotations

from alembic import context

from broadcaster.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("broadcaster migrations run through broadcaster.store.migrate")

# Batch mode lets later migrations alter SQLite tables (copy-and-move) with the same code.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
