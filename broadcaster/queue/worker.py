"""The worker loop: claim due jobs with a lease, run them concurrently, repeat.

The loop owns nothing but the claim; what a job does is the handler's business (for deliveries,
:class:`broadcaster.delivery.DeliveryRunner`). Database calls run in threads so that slow SQL or
a busy SQLite file never stalls adapters waiting on the network in the same event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from broadcaster.queue.jobs import Job, JobKind, claim, release
from broadcaster.store.database import Store
from broadcaster.timeutil import Clock, utcnow

__all__ = ["Handler", "Worker", "WorkerOptions", "worker_id"]

log = logging.getLogger("broadcaster.worker")

Handler = Callable[[Job], Awaitable[None]]


def worker_id() -> str:
    """A name for this worker that is unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    """How a worker claims."""

    batch_size: int = 20
    #: A job held longer than this by a silent worker is taken over by another.
    lease: timedelta = timedelta(minutes=5)
    poll_interval_seconds: float = 1.0


class Worker:
    """Runs jobs from one database until stopped (or, with ``until_idle``, until none is due)."""

    def __init__(
        self,
        store: Store,
        handlers: Mapping[JobKind, Handler],
        *,
        owner: str | None = None,
        clock: Clock = utcnow,
        options: WorkerOptions | None = None,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.owner = owner or worker_id()
        self.clock = clock
        self.options = options or WorkerOptions()
        self.processed = 0

    async def run(self, *, until_idle: bool = False, stop: asyncio.Event | None = None) -> int:
        """Process jobs; returns how many this call ran."""
        stop = stop or asyncio.Event()
        start = self.processed
        while not stop.is_set():
            claimed = await asyncio.to_thread(self._claim)
            if claimed:
                await asyncio.gather(*(self._run(job) for job in claimed))
                continue
            if until_idle:  # nothing this worker can run now: drained
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.poll_interval_seconds)
        return self.processed - start

    def _claim(self) -> list[Job]:
        with self.store.write() as conn:
            return claim(
                conn,
                owner=self.owner,
                limit=self.options.batch_size,
                lease=self.options.lease,
                now=self.clock(),
            )

    async def _run(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            log.error("no handler for %s job %s; releasing it", job.kind, job.id)
            await asyncio.to_thread(self._release, [job.id])
            return
        try:
            await handler(job)
        except asyncio.CancelledError:
            await asyncio.to_thread(self._release, [job.id])
            raise
        except Exception:
            # E.g. the database went away mid-job. The job keeps its lease and is taken over
            # (and verified) when the lease expires; the worker itself carries on.
            log.exception("job %s failed in its handler; it is retried after its lease", job.id)
            return
        self.processed += 1

    def _release(self, job_ids: list[int]) -> None:
        with self.store.write() as conn:
            release(conn, job_ids, self.owner, self.clock())
