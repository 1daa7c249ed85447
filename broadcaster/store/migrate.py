"""Alembic, driven from code: the migration scripts ship inside the package."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

__all__ = ["head_revision", "upgrade"]

_SCRIPT_LOCATION = "broadcaster.store:migrations"


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    config.attributes["connection"] = conn
    return config


def upgrade(conn: Connection, revision: str = "head") -> None:
    """Bring the database behind ``conn`` to ``revision`` (the newest), inside its transaction."""
    command.upgrade(_config(conn), revision)


def head_revision() -> str:
    """The newest revision of the shipped migration scripts."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migration scripts found in broadcaster.store.migrations")
    return head
