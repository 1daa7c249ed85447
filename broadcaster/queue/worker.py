"""The worker loop: keep up to ``max_in_flight`` jobs running, claim more as slots free up.

Jobs run as independent tasks, so one that waits on a hanging platform occupies one slot and
nothing else: the loop wakes at least every ``tick`` to record finished jobs and claim new ones.
Handlers return a :class:`Settlement`; the loop writes the settlements of every job that finished
since the last round in one transaction. Database calls run in threads so slow SQL never stalls
adapters waiting on the network in the same event loop.

Stopping (SIGTERM, Ctrl-C): no new claims; running jobs get ``shutdown_grace`` to finish; the
rest are cancelled and their jobs released for another worker. A delivery interrupted after it
was marked ``sending`` is verified with the platform by whoever runs it next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta

from broadcaster.queue.jobs import Job, JobState, Settlement, apply_settlements, claim, release
from broadcaster.store.database import Store
from broadcaster.timeutil import Clock, utcnow

__all__ = ["Handler", "Worker", "WorkerOptions", "worker_id"]

log = logging.getLogger("broadcaster.worker")

Handler = Callable[[Job], Awaitable[Settlement]]


def worker_id() -> str:
    """A name for this worker that is unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    """How a worker claims and stops."""

    batch_size: int = 100
    max_in_flight: int = 64
    #: A job held longer than this by a silent worker is taken over by another.
    lease: timedelta = timedelta(minutes=5)
    #: How long an idle worker sleeps before looking for due jobs again.
    poll_interval: float = 1.0
    #: How often a busy worker records finished jobs and claims more.
    tick: float = 0.05
    shutdown_grace: float = 20.0


class Worker:
    """Runs jobs from one database until stopped (or, with ``until_idle``, until none is due)."""

    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, Handler],
        *,
        owner: str | None = None,
        clock: Clock = utcnow,
        options: WorkerOptions | None = None,
        exclude_targets: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.owner = owner or worker_id()
        self.clock = clock
        self.options = options or WorkerOptions()
        self.exclude_targets = exclude_targets
        self.processed = 0
        self._running: dict[asyncio.Task[Settlement | None], Job] = {}
        self._finished: list[Settlement] = []

    async def run(self, *, until_idle: bool = False, stop: asyncio.Event | None = None) -> int:
        """Process jobs; returns how many this call settled."""
        stop = stop or asyncio.Event()
        start = self.processed
        try:
            while not stop.is_set():
                claimed = await self._claim_more()
                if self._running:
                    await self._wait_for_progress(stop)
                elif not claimed:
                    if until_idle:
                        break
                    await _wait(stop, self.options.poll_interval)
                await self._flush()
        finally:
            await self._shut_down()
        return self.processed - start

    async def _claim_more(self) -> list[Job]:
        room = self.options.max_in_flight - len(self._running)
        if room <= 0:
            return []
        limit = min(room, self.options.batch_size)
        claimed = await asyncio.to_thread(self._claim, limit, set(self.exclude_targets()))
        for job in claimed:
            task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
            self._running[task] = job
        return claimed

    def _claim(self, limit: int, exclude: set[str]) -> list[Job]:
        with self.store.write() as conn:
            return claim(
                conn,
                owner=self.owner,
                limit=limit,
                lease=self.options.lease,
                now=self.clock(),
                exclude_targets=exclude,
            )

    async def _wait_for_progress(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                [*self._running, stopping],
                timeout=self.options.tick,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopping.cancel()
        # Give other jobs that are finishing right now a moment, so they share one transaction.
        await asyncio.sleep(0)
        self._collect()

    def _collect(self) -> None:
        for task in [t for t in self._running if t.done()]:
            job = self._running.pop(task)
            if task.cancelled():
                continue
            error = task.exception()
            if error is not None:
                # E.g. the database went away mid-job: the job keeps its lease and is taken
                # over (and verified) when the lease expires; the worker carries on.
                log.error("job %s failed in its handler: %r", job.id, error, exc_info=error)
                continue
            settlement = task.result()
            if settlement is not None:
                self._finished.append(settlement)

    async def _run(self, job: Job) -> Settlement | None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            log.error("no handler for %s job %s; it goes to the dead letters", job.kind, job.id)
            return Settlement(
                job_id=job.id, state=JobState.DEAD, error=f"no handler for {job.kind}"
            )
        return await handler(job)

    async def _flush(self) -> None:
        if not self._finished:
            return
        batch, self._finished = self._finished, []
        written = await asyncio.to_thread(self._write, batch)
        self.processed += written

    def _write(self, batch: list[Settlement]) -> int:
        with self.store.write() as conn:
            return apply_settlements(conn, self.owner, batch, self.clock())

    async def _shut_down(self) -> None:
        if self._running:
            _, pending = await asyncio.wait(
                list(self._running), timeout=self.options.shutdown_grace
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            interrupted = [self._running[t] for t in pending]
            self._collect()
            if interrupted:
                ids = [job.id for job in interrupted]
                released = await asyncio.to_thread(self._release, ids)
                log.info("released %d job(s) that did not finish in time", released)
        await self._flush()

    def _release(self, job_ids: list[int]) -> int:
        with self.store.write() as conn:
            return release(conn, job_ids, self.owner, self.clock())


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
