"""Running the queue for one workspace: the worker loop with the delivery handler."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from broadcaster.app import App
from broadcaster.approval_card_job import ApprovalCardRunner
from broadcaster.delivery import DeliveryRunner, SendObserver
from broadcaster.errors import InputError
from broadcaster.limits import limits_for
from broadcaster.queue.jobs import JobKind
from broadcaster.queue.worker import Worker, WorkerOptions, worker_id

__all__ = ["run_worker", "worker_identity", "worker_options"]

log = logging.getLogger("broadcaster.worker")


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
    wake: asyncio.Event | None = None,
    on_send: SendObserver | None = None,
) -> int:
    """Process jobs until stopped (or idle); returns how many jobs were settled.

    Args:
        app: The workspace.
        until_idle: Return once no job is due (``broadcaster worker --until-idle``).
        stop: Set to stop (running jobs finish within ``[queue] shutdown_grace_seconds``).
        options: Worker settings; by default the workspace's ``[queue]`` section.
        owner: The worker's name on the jobs it holds; by default a unique one.
        wake: Set (on the worker's loop) when this process just queued work: an idle worker
            looks for it at once instead of at its next poll.
        on_send: Told of every platform call: channel and seconds (``serve``'s ``/metrics``).
    """
    owner = owner or worker_id()
    options = options or worker_options(app)
    identity = worker_identity(app, options, owner)
    # One line that says who is working on what: the first thing an operator looks for when
    # two workers share a database or a worker runs in the wrong folder.
    log.info(_start_line(identity), extra={"worker": identity})
    runner = DeliveryRunner(app, owner, on_send=on_send)
    cards = ApprovalCardRunner(app)
    worker = Worker(
        app.store,
        {JobKind.DELIVER: runner, JobKind.APPROVAL_CARD: cards},
        owner=owner,
        clock=app.queue_clock,
        options=options,
        capacity=runner,
    )
    try:
        return await worker.run(until_idle=until_idle, stop=stop, wake=wake)
    finally:
        await runner.aclose()
        await cards.aclose()


def worker_identity(app: App, options: WorkerOptions, owner: str) -> dict[str, Any]:
    """Who this worker is: workspace, database (password hidden), targets and limits."""
    from sqlalchemy.engine import make_url

    config = app.config
    rates: dict[str, float] = {}
    for target in config.targets:
        try:
            adapter = app.registry.adapter_for(target)
        except InputError:
            continue  # no adapter in this version: its deliveries say so; the worker still runs
        for key, per_second in limits_for(config, target, adapter).rate_keys:
            rates[key] = per_second
    return {
        "id": owner,
        "workspace": str(app.workspace.root),
        "database": make_url(app.workspace.database_url).render_as_string(hide_password=True),
        "timezone": config.broadcaster.timezone,
        "exercise": config.broadcaster.exercise,
        "targets": [target.id for target in config.targets],
        "max_in_flight": options.max_in_flight,
        "batch_size": options.batch_size,
        "lease_seconds": options.lease.total_seconds(),
        "rate_limits": dict(sorted(rates.items())),
    }


def _start_line(identity: dict[str, Any]) -> str:
    rates = ", ".join(f"{key} {value:g}/s" for key, value in identity["rate_limits"].items())
    targets = identity["targets"]
    mode = " (exercise mode)" if identity["exercise"] else ""
    return (
        f"worker {identity['id']} started{mode}: workspace {identity['workspace']}, "
        f"database {identity['database']}, {len(targets)} target(s): "
        f"{', '.join(targets) or 'none'}; max_in_flight {identity['max_in_flight']}, "
        f"lease {identity['lease_seconds']:g} s, rate limits: {rates or 'none'}"
    )
