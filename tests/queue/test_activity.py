"""What the job table tells a person watching it: due, running, and the last change."""

from __future__ import annotations

from datetime import timedelta

from broadcaster.app import App
from broadcaster.queue.jobs import activity
from tests.conftest import FakeClock
from tests.queue.test_jobs import add, take

QUIET = timedelta(seconds=10)


def seen(app: App) -> tuple[int, int, bool]:
    with app.store.read() as conn:
        found = activity(conn, app.clock())
    return found.due, found.running, found.unattended(app.clock(), QUIET)


def test_due_jobs_nobody_claims_become_unattended(db_app: App, clock: FakeClock) -> None:
    assert seen(db_app) == (0, 0, False)
    add(db_app, "a", "b")
    add(db_app, "later", delay=3600)
    assert seen(db_app) == (2, 0, False)  # just enqueued: a worker gets its moment
    clock.advance(11)
    assert seen(db_app) == (2, 0, True)
    take(db_app, wants={"a": 1}, others=0)
    assert seen(db_app) == (1, 1, False)  # a worker holds a job
    clock.advance(60)  # its lease (30 s) lapsed, and nothing changed since
    assert seen(db_app) == (1, 0, True)
