"""Alembic migration scripts (see broadcaster.store.migrate)."""
