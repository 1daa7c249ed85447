"""Running the queue for one workspace: the worker loop with the delivery handler."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from broadcaster.app import App
from broadcaster.delivery import DeliveryRunner
from broadcaster.queue.jobs import JobKind
from broadcaster.queue.worker import Worker, WorkerOptions, worker_id

__all__ = ["run_worker", "worker_options"]


def worker_options(app: App) -> WorkerOptions:
    """Worker settings from the workspace's ``[queue]`` section."""
    queue = app.config.queue
    return WorkerOptions(
        batch_size=queue.batch_size,
        max_in_flight=queue.max_in_flight,
        lease=timedelta(seconds=queue.lease_seconds),
        shutdown_grace=queue.shutdown_grace_seconds,
        max_handler_errors=queue.max_handler_errors,
    )


async def run_worker(
    app: App,
    *,
    until_idle: bool = False,
    stop: asyncio.Event | None = None,
    options: WorkerOptions | None = None,
    owner: str | None = None,
) -> int:
    """Process jobs until stopped (or idle); returns how many jobs were settled."""
    owner = owner or worker_id()
    runner = DeliveryRunner(app, owner)
    worker = Worker(
        app.store,
        {JobKind.DELIVER: runner},
        owner=owner,
        clock=app.queue_clock,
        options=options or worker_options(app),
        capacity=runner,
    )
    try:
        return await worker.run(until_idle=until_idle, stop=stop)
    finally:
        await runner.aclose()
