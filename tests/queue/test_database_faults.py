"""A worker rides out a database that is locked or restarting: it waits, says so, carries on.

Found on main: with SQLite's write lock held past the 30 s busy timeout, `broadcaster worker`
printed a traceback (``database is locked``) and exited 1. Each test here holds the database
away from a real worker process mid-drain, then checks that every delivery went out exactly once.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from broadcaster.app import App
from broadcaster.store.schema import deliveries, jobs
from tests.queue.conftest import Workers, fan_out, tally, wait_for
from tests.queue.recorder import Recorder

pytestmark = pytest.mark.slow

COUNT = 300


def assert_exactly_once(app: App, recorder: Recorder, announcement_id: int) -> None:
    assert tally(app, announcement_id) == {"sent": COUNT}
    assert Counter(recorder.state.effects.values()) == {1: COUNT}
    with app.store.read() as conn:
        assert set(conn.execute(select(jobs.c.state)).scalars()) == {"done"}
        assert set(conn.execute(select(deliveries.c.attempts)).scalars()) == {1}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_waits_out_a_database_locked_for_a_minute(
    queue_app: App, recorder: Recorder, workers: Workers, database_url: str
) -> None:
    recorder.state.latency = 0.02
    # The platform answers 60 posts, then holds the rest until the lock is taken: the drain
    # cannot finish first, however slowly this test thread runs on a loaded machine.
    recorder.state.admit = 60
    announcement_id = fan_out(queue_app, COUNT, "web-borgholm")
    worker = workers.start()
    wait_for(lambda: len(recorder.state.effects) >= 50, 60, "the drain to be under way")
    path = make_url(database_url).database
    assert path is not None
    locked = threading.Event()

    def hold_the_write_lock() -> None:
        # Another process's long transaction: nobody else may write for 60 s.
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(60)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    assert locked.wait(10), "the lock was never taken"
    recorder.state.gate.set()  # the answers arrive; their outcomes meet the locked database
    try:
        wait_for(lambda: "database is unavailable" in workers.log(worker), 60, "the notice")
    except AssertionError:
        effects = len(recorder.state.effects)
        raise AssertionError(f"{effects} posts; log:\n{workers.log(worker)[-3000:]}") from None
    during = len(recorder.state.effects)
    holder.join()
    assert worker.poll() is None  # still running
    wait_for(lambda: tally(queue_app, announcement_id) == {"sent": COUNT}, 300, "the rest")
    assert workers.stop_all() == [0]
    log = workers.log(worker)
    assert log.count("database is unavailable") == 1  # one line, not one per attempt
    assert "database is back" in log
    assert "Traceback" not in log
    assert during < COUNT  # the lock really held delivery up
    assert_exactly_once(queue_app, recorder, announcement_id)


def _postgres_cluster(url: str) -> list[str]:
    """The pg_ctlcluster arguments that name the server at ``url`` (Debian's postgresql-common)."""
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        pytest.fail(
            "restarting PostgreSQL needs pg_ctlcluster and pg_lsclusters (postgresql-common)"
        )
    port = str(make_url(url).port or 5432)
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            return [version, name]
    pytest.fail(f"no local PostgreSQL cluster listens on port {port}")


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_worker_rides_out_a_postgresql_restart(
    queue_app: App, recorder: Recorder, workers: Workers, database_url: str
) -> None:
    cluster = _postgres_cluster(database_url)
    recorder.state.latency = 0.02
    announcement_id = fan_out(queue_app, COUNT, "web-borgholm")
    worker = workers.start()
    wait_for(lambda: len(recorder.state.effects) >= 50, 60, "the drain to be under way")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"],
        check=True,
        capture_output=True,
    )
    wait_for(lambda: tally(queue_app, announcement_id) == {"sent": COUNT}, 300, "the rest")
    assert worker.poll() is None
    assert workers.stop_all() == [0]
    log = workers.log(worker)
    assert "database is unavailable" in log and "database is back" in log
    assert "Traceback" not in log
    assert_exactly_once(queue_app, recorder, announcement_id)
