"""The worker loop (drives :mod:`broadcaster.queue.jobs`): claim what can start, run, renew, settle.

Each round the loop writes the outcomes of the jobs that finished (one transaction), renews the
leases of everything it holds when a quarter of the lease has passed (one statement), starts
claimed jobs while their targets have room, and claims more — for each target at most what can
start now, so nothing is claimed only to be written back. Jobs run as independent tasks: one
that waits on a hanging platform occupies one slot and nothing else.

Faults: a database that is locked or unreachable pauses claiming and is retried with backoff
(one log line when it goes, one when it is back); outcomes wait in memory meanwhile, and their
writes are tied to the attempt, so writing them late is safe. A handler that raises is retried
with backoff and dead-lettered after ``max_handler_errors`` failures.

Stopping (SIGTERM, Ctrl-C): no new claims; running jobs get ``shutdown_grace`` to finish; the
rest are cancelled and their jobs released for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy import Connection

from broadcaster.queue.clock import DatabaseClock, QueueClock
from broadcaster.queue.jobs import Job, JobState, Settlement, claim, release, renew, settle_jobs
from broadcaster.queue.lease import Lease
from broadcaster.store.database import Store, is_unavailable

__all__ = ["Capacity", "Handler", "Worker", "WorkerOptions", "worker_id"]

log = logging.getLogger("broadcaster.worker")

T = TypeVar("T")


class Handler(Protocol):
    """Runs one kind of job, and writes what its jobs did."""

    async def __call__(self, job: Job, lease: Lease) -> Settlement:
        """Run a claimed job to its next state (platform calls under ``lease.deadline``)."""
        ...

    def record(self, conn: Connection, settlements: Sequence[Settlement], now: datetime) -> None:
        """Write the settlements' outcomes, in the transaction that then settles their jobs."""
        ...


class Capacity(Protocol):
    """How much work each target can take; the worker claims no more than that."""

    def targets(self) -> Collection[str]:
        """The targets claims ask for one by one."""
        ...

    def room(self, target: str | None, busy: Mapping[str | None, int]) -> int:
        """How many more jobs of ``target`` may run, given this worker's jobs per target."""
        ...

    def paused(self, target: str) -> bool:
        """True while the target is known to be unable to send (e.g. rate-limited)."""
        ...


def worker_id() -> str:
    """A name for this worker that is unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    """How a worker claims, renews and stops."""

    batch_size: int = 100
    max_in_flight: int = 64
    #: A job held longer than this by a silent worker is taken over by another.
    lease: timedelta = timedelta(minutes=5)
    #: How long an idle worker sleeps before looking for due jobs again.
    poll_interval: float = 1.0
    #: How often a busy worker records finished jobs and claims more.
    tick: float = 0.05
    shutdown_grace: float = 20.0
    #: A job whose handler raises this many times is dead-lettered.
    max_handler_errors: int = 5
    #: Longest pause between attempts to reach a database that is away.
    database_retry_cap: float = 30.0


@dataclass
class _Held:
    job: Job
    lease: Lease


class Worker:
    """Runs jobs from one database until stopped (or, with ``until_idle``, until none is due)."""

    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, Handler],
        *,
        owner: str | None = None,
        clock: QueueClock | None = None,
        options: WorkerOptions | None = None,
        capacity: Capacity | None = None,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.owner = owner or worker_id()
        self.clock = clock or DatabaseClock()
        self.options = options or WorkerOptions()
        self.capacity = capacity
        self.processed = 0
        lease = self.options.lease.total_seconds()
        self._renew_every = lease / 4
        # The deadline of a platform call ends this long before the lease could lapse.
        self._margin = min(2.0, lease / 10)
        self._held: dict[int, _Held] = {}
        self._backlog: list[Job] = []
        self._running: dict[asyncio.Task[Settlement], Job] = {}
        self._finished: list[Settlement] = []
        self._first_finished_at = 0.0
        # Claims and writes wait until this many jobs can go in one transaction (or a tick):
        # half the slots, so jobs that started apart come back together into one batch.
        self._enough = min(self.options.batch_size, max(1, self.options.max_in_flight // 2))
        self._busy: Counter[str | None] = Counter()  # claimed: running or waiting to start
        self._active: Counter[str | None] = Counter()  # running
        self._renewed_at = 0.0
        # How often to look for expired leases and for jobs of unknown targets.
        self._sweep_every = min(5.0, lease / 10)
        self._next_sweep = 0.0
        self._last_claim_swept = False
        self._health = _DatabaseHealth(self.options.database_retry_cap)

    async def run(
        self,
        *,
        until_idle: bool = False,
        stop: asyncio.Event | None = None,
        wake: asyncio.Event | None = None,
    ) -> int:
        """Process jobs; returns how many this call settled.

        ``wake`` cuts an idle wait short: set by code in this process that just queued work
        (``serve`` after an approval that sends), so it starts now rather than at the next poll.
        """
        stop = stop or asyncio.Event()
        start = self.processed
        try:
            while not stop.is_set():
                await self._renew_if_due()
                # Outcomes are written while the next jobs are claimed and started: on a server
                # database the two round trips overlap instead of adding up.
                flushing = asyncio.ensure_future(self._flush())
                try:
                    self._start_ready()
                    claimed = await self._claim_more()
                    self._start_ready()
                finally:
                    await flushing
                if self._running:
                    await self._wait_for_progress(stop)
                elif self._backlog or self._finished or self._health.down:
                    await _wait(stop, self._health.pause(self.options.poll_interval))
                elif not claimed:
                    if until_idle and self._last_claim_swept:
                        break
                    if until_idle:
                        self._next_sweep = 0.0  # look everywhere once before calling it idle
                        continue
                    await _idle(stop, wake, self.options.poll_interval)
        finally:
            await self._shut_down()
        return self.processed - start

    # -- claiming and starting ---------------------------------------------------------------

    async def _claim_more(self) -> list[Job]:
        free = self.options.max_in_flight - len(self._running) - len(self._backlog)
        limit = min(free, self.options.batch_size)
        # Claim in batches: wait until half the slots are free (or nothing runs), so a busy
        # worker does not pay a transaction for every job that finishes.
        if limit < self._enough and (self._running or self._backlog):
            return []
        if limit <= 0 or not self._health.ready():
            return []
        wants: dict[str | None, int] = {None: limit}
        if self.capacity is not None:
            for target in self.capacity.targets():
                room = 0 if self.capacity.paused(target) else self.capacity.room(target, self._busy)
                wants[target] = max(0, min(limit, room))
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Expired leases (a worker went silent) and jobs of targets that are no longer
        # configured are looked for now and then, not on every claim: both are rare, and the
        # second scans the queue.
        sweep = started >= self._next_sweep
        if sweep:
            self._next_sweep = started + self._sweep_every
        self._last_claim_swept = sweep
        claim_ = functools.partial(self._claim, wants, limit if sweep else 0, sweep)
        claimed = await self._database(claim_, set(self._held)) or []
        for job in claimed:
            lease = Lease(started + self.options.lease.total_seconds(), self._margin)
            self._held[job.id] = _Held(job, lease)
            self._busy[job.target] += 1
            self._backlog.append(job)
        self._backlog.sort(key=lambda job: (job.priority, job.run_at, job.id))
        return claimed

    def _claim(
        self, wants: dict[str | None, int], others: int, expired: bool, exclude: set[int]
    ) -> list[Job]:
        with self.store.write() as conn:
            now = self.clock(conn)
            return claim(
                conn,
                owner=self.owner,
                wants=wants,
                others=others,
                limit=max(wants.values()),
                lease=self.options.lease,
                now=now,
                expired=expired,
                exclude_ids=exclude,
            )

    def _start_ready(self) -> None:
        if not self._health.ready():  # a job started now would only wait for the database
            return
        waiting: list[Job] = []
        for job in self._backlog:
            held = self._held[job.id]
            if (
                len(self._running) >= self.options.max_in_flight
                or held.lease.remaining() <= 0  # wait for a renewal before acting on it
                or (self.capacity is not None and self.capacity.room(job.target, self._active) <= 0)
            ):
                waiting.append(job)
                continue
            self._active[job.target] += 1
            task = asyncio.create_task(self._run(job, held.lease), name=f"job-{job.id}")
            self._running[task] = job
        self._backlog = waiting

    async def _run(self, job: Job, lease: Lease) -> Settlement:
        handler = self.handlers.get(job.kind)
        if handler is None:
            log.error("no handler for %s job %s; it goes to the dead letters", job.kind, job.id)
            return Settlement(
                job_id=job.id, state=JobState.DEAD, error=f"no handler for {job.kind}"
            )
        try:
            return await handler(job, lease)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_unavailable(exc):  # nothing was sent: run it again once the database is back
                self._health.failed(exc)
                return Settlement(job_id=job.id, state=JobState.QUEUED, delay=1.0, attempted=False)
            log.exception("job %s: its handler failed", job.id)
            return handler_failure(job, exc, self.options.max_handler_errors)

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
            self._active[job.target] -= 1
            self._busy[job.target] -= 1
            if not task.cancelled():
                if not self._finished:
                    self._first_finished_at = asyncio.get_running_loop().time()
                self._finished.append(task.result())

    # -- writing outcomes and renewing leases -------------------------------------------------

    async def _flush(self) -> None:
        if not self._finished or not self._health.ready():
            return
        # Write in batches: while jobs are running, wait for half the slots' worth of outcomes
        # or for one tick, whichever comes first.
        waited = asyncio.get_running_loop().time() - self._first_finished_at
        if self._running and len(self._finished) < self._enough and waited < self.options.tick:
            return
        batch, self._finished = self._finished, []
        written = await self._database(self._write, batch)
        if written is None:  # the database is away: keep them for the next round
            self._finished = batch + self._finished
            return
        for settlement in batch:
            self._held.pop(settlement.job_id, None)
        self.processed += written

    def _write(self, batch: list[Settlement]) -> int:
        with self.store.write() as conn:
            now = self.clock(conn)
            kinds: dict[str, list[Settlement]] = {}
            for settlement in batch:
                kind = self._held[settlement.job_id].job.kind
                kinds.setdefault(kind, []).append(settlement)
            written: list[Settlement] = []
            for kind, group in kinds.items():
                handler = self.handlers.get(kind)
                written += group if handler is None else self._record(conn, handler, group, now)
            return settle_jobs(conn, self.owner, written, now)

    def _record(
        self, conn: Connection, handler: Handler, group: list[Settlement], now: datetime
    ) -> list[Settlement]:
        """The handler's outcomes for ``group``; one that cannot be written fails alone."""
        try:
            with conn.begin_nested():
                handler.record(conn, group, now)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            log.exception("could not record %d outcome(s); trying them one by one", len(group))
        else:
            return group
        kept = []
        for settlement in group:
            try:
                with conn.begin_nested():
                    handler.record(conn, [settlement], now)
                kept.append(settlement)
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                job = self._held[settlement.job_id].job
                kept.append(handler_failure(job, exc, self.options.max_handler_errors))
        return kept

    async def _renew_if_due(self) -> None:
        loop = asyncio.get_running_loop()
        if not self._held or loop.time() - self._renewed_at < self._renew_every:
            return
        if not self._health.ready():
            return
        asked_at = loop.time()
        ids = list(self._held)
        renewed = await self._database(self._renew, ids)
        if renewed is None:
            return
        self._renewed_at = asked_at
        lost = set()
        for job_id in ids:
            held = self._held.get(job_id)
            if held is None:
                continue
            if job_id in renewed:
                held.lease.extend(asked_at + self.options.lease.total_seconds())
            else:
                held.lease.lose()
                lost.add(job_id)
        if lost:
            log.warning("%d job(s) were taken over by another worker", len(lost))
            self._drop_waiting(lost)

    def _renew(self, job_ids: list[int]) -> set[int]:
        with self.store.write() as conn:
            return renew(conn, self.owner, job_ids, self.options.lease, self.clock(conn))

    def _drop_waiting(self, job_ids: set[int]) -> None:
        """Forget claimed jobs that never started and are no longer ours."""
        for job in [j for j in self._backlog if j.id in job_ids]:
            self._backlog.remove(job)
            self._busy[job.target] -= 1
            del self._held[job.id]

    async def _database(self, call: Callable[..., T], *args: object) -> T | None:
        """Run ``call`` in a thread; None (after noting the outage) when the database is away."""
        try:
            result = await asyncio.to_thread(call, *args)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._health.failed(exc)
            return None
        self._health.succeeded()
        return result

    # -- stopping ---------------------------------------------------------------------------

    async def _shut_down(self) -> None:
        interrupted: list[int] = []
        if self._running:
            _, pending = await asyncio.wait(
                list(self._running), timeout=self.options.shutdown_grace
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            interrupted = [self._running[t].id for t in pending]
            self._collect()
        waiting = [job.id for job in self._backlog]
        self._backlog = []
        self._health = _DatabaseHealth(self.options.database_retry_cap)  # one last try
        await self._flush()
        if self._finished:
            log.error(
                "%d outcome(s) could not be written; their jobs are taken over (and verified) "
                "when their leases expire",
                len(self._finished),
            )
        # An interrupted call may still be landing on the platform: whoever runs the job next
        # waits a little before asking the platform whether it arrived.
        released = await self._database(self._release, interrupted, 5.0)
        released_waiting = await self._database(self._release, waiting, 0.0)
        total = (released or 0) + (released_waiting or 0)
        if total:
            log.info("released %d job(s) that did not finish in time", total)

    def _release(self, job_ids: list[int], delay: float) -> int:
        if not job_ids:
            return 0
        with self.store.write() as conn:
            now = self.clock(conn)
            return release(conn, job_ids, self.owner, now, run_at=now + timedelta(seconds=delay))


def handler_failure(job: Job, error: BaseException, max_errors: int) -> Settlement:
    """The settlement of a job whose handler raised: retried with backoff, dead after a few."""
    line = traceback.format_exception_only(error)[-1].strip()
    failures = job.failures + 1
    if failures >= max_errors:
        return Settlement(
            job_id=job.id,
            state=JobState.DEAD,
            error=f"failed {failures} times in broadcaster itself; last: {line}",
            failed=True,
        )
    delay = min(60.0, 2.0**failures)
    return Settlement(job_id=job.id, state=JobState.QUEUED, delay=delay, error=line, failed=True)


class _DatabaseHealth:
    """Whether the database answered lately, and when to try again if it did not."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.backoff = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def ready(self) -> bool:
        return self.down_since is None or _now() >= self.retry_at

    def pause(self, default: float) -> float:
        return max(0.05, self.retry_at - _now()) if self.down else default

    def failed(self, error: BaseException) -> None:
        now = _now()
        if self.down_since is None:
            self.down_since = now
            self.backoff = 0.5
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            log.warning(
                "the database is unavailable (%s); delivery pauses and resumes when it is back",
                reason,
            )
        else:
            self.backoff = min(self.cap, self.backoff * 2)
        self.retry_at = now + self.backoff

    def succeeded(self) -> None:
        if self.down_since is not None:
            log.warning("the database is back after %.0f s; carrying on", _now() - self.down_since)
            self.down_since = None


def _now() -> float:
    return asyncio.get_running_loop().time()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _idle(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Wait ``seconds`` for due jobs, or less when stopped or woken."""
    if wake is None:
        await _wait(stop, seconds)
        return
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    wake.clear()
