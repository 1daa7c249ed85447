"""Opening the database: engine options per backend and schema migrations on first use.

SQLite runs in WAL mode (readers never block the writer) with foreign keys on. Its write
transactions start with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes
fails at once with "database is locked" when another process wrote in between, instead of waiting
for the busy timeout. Read-only work uses :meth:`Store.read`, which begins a plain deferred
transaction and so never queues behind writers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from broadcaster.errors import ConfigError

__all__ = ["SCHEMA_REVISION", "Store", "is_unavailable", "open_store"]

# The newest migration in broadcaster/store/migrations/versions. Checked against Alembic's head
# by a test; comparing with a constant keeps Alembic (~0.25 s to import) off the common path.
SCHEMA_REVISION = "0008"

_READONLY = "broadcaster_readonly"
_SQLITE_BUSY_TIMEOUT_MS = 30_000
# A process frozen inside a transaction (SIGSTOP, a VM paused, a debugger) keeps its row locks,
# and workers skip locked jobs: its jobs could not be taken over until it died. No transaction
# of ours waits on anything but the database, so PostgreSQL ends one idle this long.
_POSTGRES_IDLE_TRANSACTION_TIMEOUT = "30s"
# Any fixed number: every broadcaster process migrating the same PostgreSQL database takes it.
_MIGRATION_LOCK_KEY = 0x62726F61


class Store:
    """The database behind a workspace: one engine, short transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Threads of one process that wait for each other here
        # take turns the moment the lock is free; left to SQLite's busy handler they sleep in
        # steps of up to 100 ms, which made a busy worker's batches collide and stall. (Other
        # processes still meet at the busy handler.) Reentrant, so a nested write() in one
        # thread fails with SQLite's own error rather than hanging here.
        self._write_turn = threading.RLock() if engine.dialect.name == "sqlite" else None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on any exception."""
        if self._write_turn is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_turn, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite it does not take the write lock)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_READONLY: True})
            with conn.begin():
                yield conn

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Connect to ``url`` and bring its schema up to date (unless ``migrate`` is False)."""
    try:
        parsed = make_url(url)
        engine = _create_engine(url, parsed.get_backend_name())
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError([f"database_url: cannot use {_redact(url)!r}: {exc}"]) from None
    store = Store(engine)
    if migrate:
        try:
            upgrade_schema(store)
        except OperationalError as exc:
            store.close()
            raise ConfigError(
                [f"database_url: cannot open {_redact(url)!r}: {exc.orig or exc}"]
            ) from None
    return store


def upgrade_schema(store: Store) -> None:
    """Apply pending Alembic migrations; a no-op (without importing Alembic) when current."""
    with store.read() as conn:
        if _current_revision(conn) == SCHEMA_REVISION:
            return
    from broadcaster.store import migrate  # Alembic is imported only when there is work

    with store.write() as conn:
        if store.dialect == "postgresql":
            # Several workers starting at once on a new database must not migrate twice.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        migrate.upgrade(conn)


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the database cannot be used right now, rather than a bug.

    SQLite says "database is locked" when another process holds the write lock past the busy
    timeout; PostgreSQL drops connections when it restarts and refuses them while it is down.
    Both pass: the right answer is to wait and try again, not to give up on the work.
    """
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def _create_engine(url: str, backend: str) -> Engine:
    if backend == "sqlite":
        _create_private(make_url(url).database)
        engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "connect", _postgres_on_connect)
    return engine


def _create_private(database: str | None) -> None:
    """Create a new SQLite database file readable by its owner only (0600), like ``.env``.

    It holds personal data (names, phone numbers). SQLite would create it with the process's
    umask (usually 0644, readable by every user of the machine), and gives its ``-wal`` and
    ``-shm`` files the mode of the database file, so creating that file first is enough. An
    existing file is left as its owner set it.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        descriptor = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a missing folder or no permission: SQLite reports it in its own words
    os.close(descriptor)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event (pysqlite would otherwise BEGIN
    # lazily, and always DEFERRED).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _postgres_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(
        f"SET idle_in_transaction_session_timeout = '{_POSTGRES_IDLE_TRANSACTION_TIMEOUT}'"
    )
    cursor.close()
    dbapi_connection.commit()  # a SET in a transaction that is rolled back is undone


def _sqlite_on_begin(conn: Connection) -> None:
    readonly = conn.get_execution_options().get(_READONLY, False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"
