"""Opening the database: migrations on first use, SQLite settings, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from broadcaster.errors import ConfigError
from broadcaster.store.database import SCHEMA_REVISION, open_store
from broadcaster.store.migrate import head_revision
from broadcaster.store.schema import metadata

EXPECTED_TABLES = {"announcements", "revisions", "approvals", "deliveries", "jobs", "audit_events"}


def test_schema_revision_constant_matches_alembic_head() -> None:
    assert head_revision() == SCHEMA_REVISION


def test_first_open_migrates_and_second_open_is_a_no_op(database_url: str) -> None:
    store = open_store(database_url)
    with store.read() as conn:
        tables = set(inspect(conn).get_table_names())
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert tables >= EXPECTED_TABLES
    assert version == SCHEMA_REVISION
    store.close()
    again = open_store(database_url)
    with again.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    again.close()


def test_migrations_create_what_schema_py_describes(database_url: str) -> None:
    store = open_store(database_url)
    with store.read() as conn:
        inspector = inspect(conn)
        for table in metadata.sorted_tables:
            migrated = {c["name"] for c in inspector.get_columns(table.name)}
            assert migrated == {c.name for c in table.columns}, table.name
    store.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with pytest.raises(Exception, match="FOREIGN KEY"), store.write() as conn:
        conn.execute(
            text(
                "INSERT INTO revisions (announcement_id, number, kind, title, body, severity,"
                " language, overrides, targets, content_hash, author, created_at)"
                " VALUES (999, 1, 'original', 't', 'b', 'info', 'sv', '{}', '[]', 'h', 'a',"
                " '2026-01-01')"
            )
        )
    store.close()


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_postgres_ends_a_transaction_left_idle_by_a_frozen_process(database_url: str) -> None:
    store = open_store(database_url)
    with store.read() as conn:
        assert conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "30s"
    store.close()


def test_unusable_database_url_is_a_config_error_without_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="database_url"):
        open_store("nosuchdb://user:pw@host/db")
    with pytest.raises(ConfigError) as caught:
        open_store("postgresql+psycopg://user:s3cret@127.0.0.1:1/db?connect_timeout=2")
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot open"):
        open_store(f"sqlite:///{tmp_path}/missing-folder/x.db")
