"""Upgrading a database that holds data from the previous schema revision."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from broadcaster.store import migrate
from broadcaster.store.database import open_store


def test_upgrade_from_0001_keeps_data_and_fills_the_job_target(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        migrate.upgrade(conn, "0001")
        conn.execute(
            text(
                "INSERT INTO announcements (id, uid, state, current_revision, author, created_at,"
                " updated_at) VALUES (1, 'u', 'dispatching', 1, 'k', :t, :t)"
            ),
            {"t": "2026-12-12 19:30:00"},
        )
        conn.execute(
            text(
                "INSERT INTO revisions (id, announcement_id, number, kind, title, body, severity,"
                " language, overrides, targets, content_hash, author, created_at) VALUES"
                " (1, 1, 1, 'original', 'T', 'B', 'info', 'sv', '{}', :targets, 'h', 'k', :t)"
            ),
            {"t": "2026-12-12 19:30:00", "targets": '["web-a"]'},
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (id, announcement_id, revision_id, target, channel,"
                " recipient, state, attempts, created_at, updated_at) VALUES"
                " (1, 1, 1, 'web-a', 'website', '', 'pending', 0, :t, :t)"
            ),
            {"t": "2026-12-12 19:30:00"},
        )
        conn.execute(
            text(
                "INSERT INTO jobs (id, kind, delivery_id, state, run_at, attempts, created_at,"
                " updated_at) VALUES (1, 'deliver', 1, 'queued', :t, 0, :t, :t)"
            ),
            {"t": "2026-12-12 19:30:00"},
        )
    engine.dispose()
    store = open_store(database_url)
    with store.read() as conn:
        assert conn.execute(text("SELECT target FROM jobs WHERE id = 1")).scalar_one() == "web-a"
        assert conn.execute(text("SELECT age_from FROM deliveries")).scalar_one() is None
        assert conn.execute(text("SELECT count(*) FROM rate_slots")).scalar_one() == 0
    store.close()


def test_upgrade_from_0003_keeps_sent_deliveries_with_an_empty_receipt(database_url: str) -> None:
    from broadcaster.model import Receipt
    from broadcaster.store.deliveries import get_deliveries

    engine = create_engine(database_url)
    moment = {"t": "2026-12-12 19:30:00"}
    with engine.begin() as conn:
        migrate.upgrade(conn, "0003")
        conn.execute(
            text(
                "INSERT INTO announcements (id, uid, state, current_revision, author, created_at,"
                " updated_at) VALUES (1, 'u', 'sent', 1, 'k', :t, :t)"
            ),
            moment,
        )
        conn.execute(
            text(
                "INSERT INTO revisions (id, announcement_id, number, kind, title, body, severity,"
                " language, overrides, targets, content_hash, author, created_at) VALUES"
                " (1, 1, 1, 'original', 'T', 'B', 'info', 'sv', '{}', '[\"web-a\"]', 'h', 'k', :t)"
            ),
            moment,
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (id, announcement_id, revision_id, target, channel,"
                " recipient, state, attempts, platform_id, created_at, updated_at) VALUES"
                " (1, 1, 1, 'web-a', 'website', '', 'sent', 1, 'kris/u.html', :t, :t)"
            ),
            moment,
        )
    engine.dispose()
    store = open_store(database_url)
    with store.read() as conn:
        assert get_deliveries(conn, [1])[1].receipt == Receipt("kris/u.html", {})
    store.close()


def test_upgrade_from_0004_adds_empty_recipient_lists(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        migrate.upgrade(conn, "0004")
    engine.dispose()
    store = open_store(database_url)
    with store.read() as conn:
        for query in (
            "SELECT count(*) FROM recipient_lists",
            "SELECT count(*) FROM list_members",
            "SELECT count(*) FROM opt_outs",
        ):
            assert conn.execute(text(query)).scalar_one() == 0
    store.close()
