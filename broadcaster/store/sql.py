"""Small SQL helpers shared by the repository modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["insert_or_ignore", "inserted_id"]


def insert_or_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT unless a unique constraint already holds the row; True when a row was inserted.

    ``ON CONFLICT DO NOTHING`` instead of catching IntegrityError: on PostgreSQL a failed insert
    aborts the whole transaction, and the caller's other work in it would be lost.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING rather than rowcount: with RETURNING (which SQLAlchemy may add by itself on
    # PostgreSQL) the driver reports rowcount -1.
    primary_key = next(iter(table.primary_key.columns))
    return conn.execute(statement.returning(primary_key)).first() is not None


def inserted_id(result: CursorResult[Any]) -> int:
    """The integer primary key of the row an INSERT just created."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise RuntimeError("the database did not return the new row's id")
    return int(key[0])
