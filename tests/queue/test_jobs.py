"""The job table: claims, leases, exclusions and settlements, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from broadcaster.app import App
from broadcaster.queue.jobs import (
    JobState,
    NewJob,
    Settlement,
    apply_settlements,
    claim,
    enqueue_many,
    release,
)
from broadcaster.store.schema import jobs
from tests.conftest import FakeClock

LEASE = timedelta(seconds=30)


def add(app: App, *targets: str, delay: float = 0) -> None:
    now = app.clock()
    with app.store.write() as conn:
        enqueue_many(
            conn,
            [NewJob(kind="noop", target=t, run_at=now + timedelta(seconds=delay)) for t in targets],
            now,
        )


def take(app: App, owner: str = "w1", limit: int = 10, **kwargs: object) -> list[int]:
    with app.store.write() as conn:
        return [
            j.id
            for j in claim(conn, owner=owner, limit=limit, lease=LEASE, now=app.clock(), **kwargs)
        ]  # type: ignore[arg-type]


def test_due_jobs_are_claimed_once_in_order(db_app: App) -> None:
    add(db_app, "a", "b", "c")
    add(db_app, "later", delay=60)
    assert take(db_app, limit=2) == [1, 2]
    assert take(db_app, owner="w2") == [3]  # the leased ones are not handed out again
    assert take(db_app, owner="w3") == []  # 'later' is not due yet


def test_an_expired_lease_is_claimed_again_and_marked_reclaimed(
    db_app: App, clock: FakeClock
) -> None:
    add(db_app, "a")
    take(db_app, owner="dies")
    clock.advance(31)
    with db_app.store.write() as conn:
        (job,) = claim(conn, owner="rescuer", limit=10, lease=LEASE, now=clock())
    assert job.reclaimed and job.attempts == 2


def test_excluded_targets_stay_queued(db_app: App) -> None:
    add(db_app, "busy", "free", "busy")
    with db_app.store.write() as conn:
        claimed = claim(
            conn, owner="w", limit=10, lease=LEASE, now=db_app.clock(), exclude_targets={"busy"}
        )
    assert [j.target for j in claimed] == ["free"]


def test_settlements_check_the_lease_and_keep_going_past_a_bad_one(
    db_app: App, clock: FakeClock
) -> None:
    add(db_app, "a", "b", "c")
    take(db_app, owner="w1")
    applied: list[int] = []

    def broken(conn: object) -> None:
        raise RuntimeError("domain update failed")

    settlements = [
        Settlement(job_id=1, state=JobState.DONE, apply=lambda conn: applied.append(1)),
        Settlement(job_id=2, state=JobState.DONE, apply=broken),
        Settlement(
            job_id=3, state=JobState.QUEUED, run_at=clock() + timedelta(seconds=5), attempted=False
        ),
    ]
    with db_app.store.write() as conn:
        assert apply_settlements(conn, "w1", settlements, clock()) == 2
        assert apply_settlements(conn, "intruder", settlements[:1], clock()) == 0
    with db_app.store.read() as conn:
        rows = {r.id: r for r in conn.execute(select(jobs))}
    assert applied == [1]
    assert (rows[1].state, rows[1].lease_owner) == ("done", None)
    assert (rows[2].state, rows[2].lease_owner) == ("running", "w1")  # rolled back: lease kept
    assert (rows[3].state, rows[3].attempts) == ("queued", 0)  # a deferral is not an attempt


def test_release_gives_jobs_back_untouched(db_app: App) -> None:
    add(db_app, "a", "b")
    ids = take(db_app, owner="w1")
    with db_app.store.write() as conn:
        assert release(conn, ids, "someone-else", db_app.clock()) == 0
        assert release(conn, ids, "w1", db_app.clock()) == 2
    assert take(db_app, owner="w2") == ids


@pytest.mark.parametrize("count", [1, 250])
def test_enqueue_many(db_app: App, count: int) -> None:
    add(db_app, *[f"t{i}" for i in range(count)])
    with db_app.store.read() as conn:
        assert len(conn.execute(select(jobs.c.id)).all()) == count
