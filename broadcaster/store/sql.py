"""Small SQL helpers shared by the repository modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, CursorResult, Table

__all__ = ["chunked", "insert_many_or_ignore", "insert_or_ignore", "inserted_id"]

T = TypeVar("T")

#: Ids per ``IN (...)`` list: keeps each statement under every backend's limit on parameters.
CHUNK = 900


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_or_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT unless a unique constraint already holds the row; True when a row was inserted.

    ``ON CONFLICT DO NOTHING`` instead of catching IntegrityError: on PostgreSQL a failed insert
    aborts the whole transaction, and the caller's other work in it would be lost.
    """
    return bool(insert_many_or_ignore(conn, table, [values]))


def insert_many_or_ignore(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> list[Any]:
    """INSERT the rows a unique constraint does not already hold; the keys of those inserted.

    One executemany: SQLAlchemy sends the rows in multi-row statements ("insertmanyvalues") and
    collects what RETURNING gives back, compiling the statement once however many rows there are.
    """
    if not rows:
        return []
    primary_key = next(iter(table.primary_key.columns))
    # RETURNING rather than rowcount: with RETURNING (which SQLAlchemy may add by itself on
    # PostgreSQL) the driver reports rowcount -1.
    statement = _dialect_insert(conn, table).on_conflict_do_nothing().returning(primary_key)
    return list(conn.execute(statement, list(rows)).scalars())


def _dialect_insert(conn: Connection, table: Table) -> Any:
    # Imported here: loading the PostgreSQL dialect eagerly slows every SQLite command.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def inserted_id(result: CursorResult[Any]) -> int:
    """The integer primary key of the row an INSERT just created."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise RuntimeError("the database did not return the new row's id")
    return int(key[0])
