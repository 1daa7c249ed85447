"""An idle worker told to wake looks for due jobs at once instead of at its next poll."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.queue.jobs import Job, JobState, NewJob, Settlement, enqueue_many
from broadcaster.queue.lease import Lease
from broadcaster.queue.worker import Worker, WorkerOptions


class Done:
    """A handler that finishes every job at once."""

    def __init__(self) -> None:
        self.ran: list[int] = []

    async def __call__(self, job: Job, lease: Lease) -> Settlement:
        self.ran.append(job.id)
        return Settlement(job_id=job.id, state=JobState.DONE)

    def record(self, conn: Connection, settlements: Sequence[Settlement], now: datetime) -> None:
        return None


def test_a_woken_worker_runs_a_job_queued_while_it_slept(queue_app: App) -> None:
    handler = Done()
    # An hour between polls: only the wake can get this job run before the test gives up.
    worker = Worker(
        queue_app.store,
        {"chore": handler},
        clock=queue_app.queue_clock,
        options=WorkerOptions(poll_interval=3600.0),
    )

    def enqueue() -> None:
        now = queue_app.clock()
        with queue_app.store.write() as conn:
            enqueue_many(conn, [NewJob(kind="chore", run_at=now)], now)

    async def main() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(worker.run(stop=stop, wake=wake))
        await asyncio.sleep(0.2)  # it found nothing and sleeps
        await asyncio.to_thread(enqueue)
        wake.set()
        for _ in range(600):
            if handler.ran:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(main())
    assert len(handler.ran) == 1
