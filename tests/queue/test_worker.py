"""The worker loop's own rules, counted in SQL statements rather than timed.

Found on main: each round claimed every due job of a target and wrote back all but its
``concurrency`` (1,000 deliveries to one website target: 61,183 settlements); dispatch inserted
one delivery and one job at a time; settling locked the announcement once per delivery.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

import pytest
from sqlalchemy import Connection, event, select
from sqlalchemy.exc import OperationalError

from broadcaster.app import App
from broadcaster.channels.base import Channel, Receipt, RecipientDirectory, Rendered
from broadcaster.channels.registry import ChannelRegistry
from broadcaster.config import TargetConfig
from broadcaster.dispatch import dispatch_revision
from broadcaster.queue.jobs import Job, JobState, NewJob, Settlement, enqueue_many
from broadcaster.queue.lease import Lease
from broadcaster.queue.worker import Worker, WorkerOptions
from broadcaster.rendering.message import Message
from broadcaster.store.schema import jobs
from tests.conftest import replace_config
from tests.queue.conftest import approved, tally, work_until


class Statements:
    """Records the SQL statements an engine runs: text, and rows for an executemany."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, int]] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        many = rest[-1] if rest else False
        self.runs.append((" ".join(statement.split()), len(params) if many else 1))

    def count(self, *fragments: str) -> int:
        """Statements whose text holds every fragment."""
        return sum(1 for text, _ in self.runs if all(f in text for f in fragments))

    def rows(self, *fragments: str) -> int:
        """Rows (an executemany counts each) of the statements holding every fragment."""
        return sum(n for text, n in self.runs if all(f in text for f in fragments))


@contextmanager
def counting(app: App) -> Iterator[Statements]:
    statements = Statements()
    event.listen(app.store.engine, "before_cursor_execute", statements)
    try:
        yield statements
    finally:
        event.remove(app.store.engine, "before_cursor_execute", statements)


def many_recipients(count: int, concurrency: int = 4) -> ChannelRegistry:
    """A registry whose website targets fan out to ``count`` recipients and post instantly."""

    class Crowd(Channel):
        name: ClassVar[str] = "website"
        default_concurrency = concurrency

        @classmethod
        def recipients(cls, target: TargetConfig, directory: RecipientDirectory) -> Sequence[str]:
            return [f"+46701{n:06d}" for n in range(count)]

        def render(self, message: Message) -> Rendered:
            return Rendered(text=message.content.title)

        async def send(self, message: Message, rendered: Rendered) -> Receipt:
            return Receipt(message.idempotency_key)

    registry = ChannelRegistry()
    registry.register_class("website", Crowd)
    return registry


def test_dispatch_of_thousands_is_a_few_statements(queue_app: App) -> None:
    queue_app.registry = many_recipients(2500)
    announcement_id = approved(queue_app, to=("web-borgholm",))
    with counting(queue_app) as statements:
        dispatch_revision(queue_app, "kommunikator", announcement_id)
    assert tally(queue_app, announcement_id) == {"pending": 2500}
    assert 1 <= statements.count("INSERT INTO deliveries") <= 5  # set-based, not 2,500
    assert statements.count("INSERT INTO jobs") == 1
    with queue_app.store.read() as conn:
        priorities = set(conn.execute(select(jobs.c.priority)).scalars())
    assert priorities == {2}  # an 'info' announcement


def test_a_fan_out_to_one_target_is_settled_about_once_per_delivery(queue_app: App) -> None:
    queue_app.registry = many_recipients(1000, concurrency=32)
    announcement_id = approved(queue_app, to=("web-borgholm",))
    dispatch_revision(queue_app, "kommunikator", announcement_id)
    with counting(queue_app) as statements:
        work_until(queue_app, lambda: tally(queue_app, announcement_id) == {"sent": 1000})
    settlements = statements.rows("UPDATE jobs SET state=", "failures=(jobs.failures")
    assert 1000 <= settlements <= 1000 * 1.05, f"{settlements} job settlements for 1000"
    # The announcement is locked to settle once per batch of outcomes, not once per delivery.
    batches = statements.count("UPDATE jobs SET state=", "failures=(jobs.failures")
    settles = statements.count("SELECT announcements.state FROM announcements")
    assert 1 <= settles <= batches < 1000 / 4
    with queue_app.store.read() as conn:
        assert set(conn.execute(select(jobs.c.attempts)).scalars()) == {1}


def test_a_saturated_target_is_not_claimed_for_while_another_flows(queue_app: App) -> None:
    replace_config(
        queue_app,
        targets=[t.model_copy(update={"concurrency": 1}) for t in queue_app.config.targets],
    )
    queue_app.registry = many_recipients(40)
    first = approved(queue_app, to=("web-borgholm",))
    second = approved(queue_app, to=("web-morbylanga",))
    dispatch_revision(queue_app, "kommunikator", first)
    dispatch_revision(queue_app, "kommunikator", second)
    with counting(queue_app) as statements:
        work_until(
            queue_app,
            lambda: tally(queue_app, first) == {"sent": 40} == tally(queue_app, second),
        )
    # Each job was claimed once and settled once: nothing was claimed only to go back.
    assert statements.rows("UPDATE jobs SET state=", "failures=(jobs.failures") == 80


class Raising:
    """A handler that always fails: a bug, not a platform's answer."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, job: Job, lease: Lease) -> Settlement:
        self.calls += 1
        return 1 // 0  # type: ignore[return-value]

    def record(self, conn: Connection, settlements: Sequence[Settlement], now: datetime) -> None:
        return None


def test_a_job_whose_handler_always_raises_is_dead_after_k(queue_app: App) -> None:
    now = queue_app.clock()
    with queue_app.store.write() as conn:
        enqueue_many(conn, [NewJob(kind="poison", run_at=now)], now)
    handler = Raising()
    worker = Worker(
        queue_app.store,
        {"poison": handler},
        clock=queue_app.queue_clock,
        options=WorkerOptions(max_handler_errors=3, poll_interval=0.05),
    )

    async def run_until_dead() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop=stop))
        for _ in range(300):
            await asyncio.sleep(0.05)
            with queue_app.store.read() as conn:
                if conn.execute(select(jobs.c.state)).scalar_one() == JobState.DEAD:
                    break
            # Make the backoff between failures pass at once.
            with queue_app.store.write() as conn:
                conn.execute(jobs.update().values(run_at=queue_app.clock()))
        stop.set()
        await task

    asyncio.run(run_until_dead())
    with queue_app.store.read() as conn:
        job = conn.execute(select(jobs)).one()
    assert (job.state, job.failures, handler.calls) == ("dead", 3, 3)
    assert job.last_error == (
        "failed 3 times in broadcaster itself; last: ZeroDivisionError: integer division or "
        "modulo by zero"
    )


class LockedOnce:
    """A handler whose first run meets a locked database (as ``mark_sending`` would)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, job: Job, lease: Lease) -> Settlement:
        self.calls += 1
        if self.calls == 1:
            raise OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("locked"))
        return Settlement(job_id=job.id, state=JobState.DONE)

    def record(self, conn: Connection, settlements: Sequence[Settlement], now: datetime) -> None:
        return None


def test_a_handler_that_meets_a_locked_database_pauses_the_worker_and_runs_again(
    queue_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in the lock trial: jobs waiting on the database were not an outage, so the worker
    said nothing while its threads queued behind the lock for minutes."""
    now = queue_app.clock()
    with queue_app.store.write() as conn:
        enqueue_many(conn, [NewJob(kind="locked", run_at=now)], now)
    handler = LockedOnce()
    worker = Worker(
        queue_app.store,
        {"locked": handler},
        clock=queue_app.queue_clock,
        options=WorkerOptions(poll_interval=0.05),
    )

    async def run_until_done() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop=stop))
        for _ in range(200):  # the job comes back after a second
            await asyncio.sleep(0.05)
            with queue_app.store.read() as conn:
                if conn.execute(select(jobs.c.state)).scalar_one() == JobState.DONE:
                    break
        stop.set()
        await task

    with caplog.at_level(logging.WARNING, logger="broadcaster.worker"):
        asyncio.run(run_until_done())
    with queue_app.store.read() as conn:
        job = conn.execute(select(jobs)).one()
    assert (job.state, job.failures, job.attempts, handler.calls) == ("done", 0, 1, 2)
    notices = [r.getMessage() for r in caplog.records]
    assert sum("the database is unavailable (locked)" in n for n in notices) == 1
    assert any("the database is back" in n for n in notices)
