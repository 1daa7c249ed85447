"""A job's stored error never holds a phone number, whoever wrote the text."""

from __future__ import annotations

from sqlalchemy import select

from broadcaster.app import App
from broadcaster.queue.jobs import JobState, Settlement, settle_jobs
from broadcaster.store.schema import jobs
from tests.queue.test_jobs import add, take


def test_a_handler_failure_quoting_a_number_is_stored_masked(db_app: App) -> None:
    add(db_app, "a")
    (job,) = take(db_app, wants={"a": 1}, others=0)
    error = "KeyError: '+46701234567' (070-123 45 67)"
    with db_app.store.write() as conn:
        settle_jobs(
            conn,
            "w1",
            [Settlement(job_id=job.id, state=JobState.QUEUED, error=error)],
            db_app.clock(),
        )
    with db_app.store.read() as conn:
        stored = conn.execute(select(jobs.c.last_error)).scalar_one()
    assert stored == "KeyError: '+46 70 *** ** 67' (070 *** ** 67)"
