"""`GET /healthz`: 200 while the database answers and the worker in the process is alive."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from broadcaster.app import App
from broadcaster.queue.jobs import JobKind, NewJob, enqueue_many
from broadcaster.timeutil import utcnow
from tests.server.conftest import ServeFactory, sms_deliveries


def test_healthy_with_the_worker_running_in_the_process(serve_factory: ServeFactory) -> None:
    running = serve_factory(worker=True)
    deadline = time.monotonic() + 10
    while (answer := running.get("/healthz")).json()["worker"] == "starting":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "database": "ok",
        "worker": "running",
        "oldest_due_job_age_seconds": None,
    }
    assert answer.headers["cache-control"] == "no-store"


def test_without_a_worker_the_age_of_the_oldest_due_job_shows(
    serve_factory: ServeFactory,
) -> None:
    running = serve_factory(worker=False)
    [waiting] = sms_deliveries(running.app, sent=False)
    with running.app.store.write() as conn:
        job = NewJob(
            kind=JobKind.DELIVER,
            run_at=utcnow() - timedelta(seconds=30),
            delivery_id=waiting.id,
            target=waiting.target,
        )
        enqueue_many(conn, [job], utcnow())

    answer = running.get("/healthz")

    assert answer.status_code == 200
    document = answer.json()
    assert (document["worker"], document["database"]) == ("off", "ok")
    assert 29 <= document["oldest_due_job_age_seconds"] < 120


def test_unavailable_when_the_database_is_gone(
    serve_factory: ServeFactory, database_url: str
) -> None:
    running = serve_factory(worker=False)
    assert running.get("/healthz").status_code == 200

    lose_database(running.app, database_url)
    answer = running.get("/healthz")

    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unavailable",
        "database": "unavailable",
        "worker": "off",
        "oldest_due_job_age_seconds": None,
    }


def lose_database(app: App, database_url: str) -> None:
    """PostgreSQL: drop the test's schema. SQLite: the file is gone and cannot be made again."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        schema = str(url.query["options"]).removeprefix("-csearch_path=")
        engine = create_engine(url.difference_update_query(["options"]))
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
        return
    database = Path(str(url.database))
    app.store.close()  # open connections would keep reading the deleted file
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            os.remove(path)
    database.mkdir()  # in its place, something SQLite cannot open


def test_unavailable_when_the_worker_in_the_process_is_no_longer_running(
    serve_factory: ServeFactory,
) -> None:
    running = serve_factory(worker=True)
    worker = running.service.worker
    assert worker is not None
    asyncio.run_coroutine_threadsafe(worker.drain(), running.loop).result(timeout=30)

    answer = running.get("/healthz")

    assert answer.status_code == 503
    assert (answer.json()["status"], answer.json()["worker"]) == ("unavailable", "stopped")
    assert answer.json()["database"] == "ok"
