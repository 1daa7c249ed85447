"""The job table: claims sized per target, priorities, leases, renewals and settlements."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from broadcaster.app import App
from broadcaster.queue.jobs import (
    Job,
    JobState,
    NewJob,
    Settlement,
    claim,
    enqueue_many,
    release,
    renew,
    settle_jobs,
)
from broadcaster.store.schema import jobs
from tests.conftest import FakeClock

LEASE = timedelta(seconds=30)


def add(app: App, *targets: str, delay: float = 0, priority: int = 2) -> None:
    now = app.clock()
    with app.store.write() as conn:
        enqueue_many(
            conn,
            [
                NewJob(
                    kind="noop", target=t, run_at=now + timedelta(seconds=delay), priority=priority
                )
                for t in targets
            ],
            now,
        )


def take(
    app: App,
    owner: str = "w1",
    wants: dict[str, int] | None = None,
    others: int = 10,
    limit: int = 10,
    exclude: set[int] | None = None,
) -> list[Job]:
    with app.store.write() as conn:
        return claim(
            conn,
            owner=owner,
            wants=wants or {},
            others=others,
            limit=limit,
            lease=LEASE,
            now=app.clock(),
            exclude_ids=exclude or set(),
        )


def ids(found: list[Job]) -> list[int]:
    return [job.id for job in found]


def test_due_jobs_are_claimed_once_in_order(db_app: App) -> None:
    add(db_app, "a", "b", "c")
    add(db_app, "later", delay=60)
    assert ids(take(db_app, limit=2)) == [1, 2]
    assert ids(take(db_app, owner="w2")) == [3]  # the leased ones are not handed out again
    assert take(db_app, owner="w3") == []  # 'later' is not due yet


def test_each_target_gets_at_most_what_it_can_take(db_app: App) -> None:
    add(db_app, *["sms"] * 50, "web", "web")
    claimed = take(db_app, wants={"sms": 4, "web": 1}, others=0, limit=100)
    assert [job.target for job in claimed].count("sms") == 4
    assert [job.target for job in claimed].count("web") == 1
    # A saturated target is not asked for at all, and nothing is claimed only to go back.
    assert take(db_app, wants={"sms": 0, "web": 0}, others=0) == []
    with db_app.store.read() as conn:
        running = conn.execute(select(jobs.c.id).where(jobs.c.state == "running")).all()
    assert len(running) == 5


def test_unknown_targets_come_through_others(db_app: App) -> None:
    add(db_app, "gone", "known")
    claimed = take(db_app, wants={"known": 0}, others=5)
    assert [job.target for job in claimed] == ["gone"]


def test_crisis_before_important_before_info_then_age(db_app: App, clock: FakeClock) -> None:
    add(db_app, "t", priority=2)
    clock.advance(1)
    add(db_app, "t", priority=0)
    clock.advance(1)
    add(db_app, "u", priority=1)
    add(db_app, "t", priority=0)
    claimed = take(db_app, wants={"t": 10, "u": 10}, others=0, limit=3)
    assert [(job.target, job.priority) for job in claimed] == [("t", 0), ("t", 0), ("u", 1)]


def test_an_expired_lease_is_claimed_again_and_counted(db_app: App, clock: FakeClock) -> None:
    add(db_app, "a")
    take(db_app, owner="dies")
    clock.advance(31)
    (job,) = take(db_app, owner="rescuer")
    assert job.reclaimed and job.attempts == 2 and job.reclaims == 1


def test_a_worker_never_claims_a_job_it_still_holds(db_app: App, clock: FakeClock) -> None:
    add(db_app, "a")
    (job,) = take(db_app, owner="slow")
    clock.advance(31)  # its lease looks expired, e.g. the database was away for a while
    assert take(db_app, owner="slow", exclude={job.id}) == []
    assert ids(take(db_app, owner="other")) == [job.id]  # another worker may take it over


def test_renewal_keeps_the_lease_and_reports_lost_ones(db_app: App, clock: FakeClock) -> None:
    add(db_app, "a", "b")
    first, second = take(db_app, owner="w1")
    clock.advance(20)
    with db_app.store.write() as conn:
        assert renew(conn, "w1", [first.id, second.id], LEASE, clock()) == {first.id, second.id}
    clock.advance(20)  # 40 s after the claim, 20 s after the renewal: still held
    assert take(db_app, owner="w2") == []
    clock.advance(11)
    (taken,) = take(db_app, owner="w2", others=1, limit=1)
    with db_app.store.write() as conn:
        assert renew(conn, "w1", [first.id, second.id], LEASE, clock()) == (
            {first.id, second.id} - {taken.id}
        )


def test_settlements_check_the_lease(db_app: App, clock: FakeClock) -> None:
    add(db_app, "a", "b", "c")
    take(db_app, owner="w1")
    settlements = [
        Settlement(job_id=1, state=JobState.DONE),
        Settlement(job_id=2, state=JobState.QUEUED, delay=5, attempted=False),
        Settlement(job_id=3, state=JobState.QUEUED, delay=9, error="boom", failed=True),
    ]
    with db_app.store.write() as conn:
        assert settle_jobs(conn, "intruder", settlements, clock()) == 0
        assert settle_jobs(conn, "w1", settlements, clock()) == 3
    with db_app.store.read() as conn:
        rows = {r.id: r for r in conn.execute(select(jobs))}
    assert (rows[1].state, rows[1].lease_owner) == ("done", None)
    assert (rows[2].state, rows[2].attempts) == ("queued", 0)  # a deferral is not an attempt
    assert rows[2].run_at == clock() + timedelta(seconds=5)
    assert (rows[3].failures, rows[3].last_error) == (1, "boom")


def test_release_gives_jobs_back_untouched(db_app: App) -> None:
    add(db_app, "a", "b")
    found = ids(take(db_app, owner="w1"))
    with db_app.store.write() as conn:
        assert release(conn, found, "someone-else", db_app.clock()) == 0
        assert release(conn, found, "w1", db_app.clock()) == 2
    assert ids(take(db_app, owner="w2")) == found


@pytest.mark.parametrize("count", [1, 2500])
def test_enqueue_many(db_app: App, count: int) -> None:
    add(db_app, *[f"t{i}" for i in range(count)])
    with db_app.store.read() as conn:
        assert len(conn.execute(select(jobs.c.id)).all()) == count
