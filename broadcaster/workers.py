"""Running the queue for one workspace: the worker loop with the delivery handler."""

from __future__ import annotations

import asyncio

from broadcaster.app import App
from broadcaster.delivery import DeliveryRunner
from broadcaster.queue.jobs import JobKind
from broadcaster.queue.worker import Worker, WorkerOptions, worker_id

__all__ = ["run_worker"]


async def run_worker(
    app: App,
    *,
    until_idle: bool = False,
    stop: asyncio.Event | None = None,
    options: WorkerOptions | None = None,
    owner: str | None = None,
) -> int:
    """Process jobs until stopped (or idle); returns how many jobs ran."""
    owner = owner or worker_id()
    runner = DeliveryRunner(app, owner)
    worker = Worker(
        app.store, {JobKind.DELIVER: runner}, owner=owner, clock=app.clock, options=options
    )
    try:
        return await worker.run(until_idle=until_idle, stop=stop)
    finally:
        await runner.aclose()
