"""Job queue throughput: broadcaster's queue on SQLite and PostgreSQL against huey's SqliteHuey.

What is measured, per engine, for 20,000 no-op jobs:

* **enqueue** - the time to add all of them (broadcaster: ``enqueue_many`` in transactions of
  ``ENQUEUE_CHUNK`` jobs, as dispatch adds one announcement's fan-out; huey: one call to the task
  per job, which is huey's only way to enqueue - it has no batch API);
* **drain** - the time for one real consumer to take every job, run its no-op handler and record
  the outcome (broadcaster: ``Worker.run(until_idle=True)``, which claims and settles in batches;
  huey: ``huey.create_consumer(...)`` started with its own worker thread(s), timed until the last
  task has signalled completion);
* **end-to-end jobs/s** = 20,000 / (enqueue + drain).

Each engine starts from an empty database: a SQLite file in a fresh temporary folder, and on
PostgreSQL a schema created for the run and dropped after it (server from
``BROADCASTER_BENCH_POSTGRES_URL``; when it cannot be reached the run says so and reports
``nan``). ``ratio_vs_huey`` compares like with like: broadcaster on SQLite against huey on SQLite,
both in WAL mode with ``synchronous=NORMAL``. Every job is checked to be settled before a figure
is reported; the figures themselves are printed against the targets, never asserted.

Run: ``.venv/bin/python bench/queue_throughput.py`` (well under a minute). The last line is
``RESULT sqlite_jobs_per_s=... postgres_jobs_per_s=... huey_jobs_per_s=... ratio_vs_huey=...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchModuleError, OperationalError

from broadcaster.errors import ConfigError
from broadcaster.queue.jobs import Job, JobState, NewJob, Settlement, enqueue_many
from broadcaster.queue.worker import Worker, WorkerOptions
from broadcaster.store.database import Store, open_store
from broadcaster.store.schema import jobs

JOBS = 20_000
NOOP = "noop"

# Jobs per enqueue transaction: the size of a large announcement's fan-out (one SMS per member of
# a big recipient list). One transaction for all 20,000 is no faster.
ENQUEUE_CHUNK = 1_000

# The worker's options, the same on both databases. Swept on the 2-core bench machine (three runs
# each, both databases): batch_size/max_in_flight 100/100, 250/250, 500/500, 1000/1000, 250/1000.
# With set-based settlements (one UPDATE per distinct outcome per batch) 100 -> 250 -> 500 gains
# 35% and 1000 gains nothing more, while a crashed worker would strand twice as many leased jobs;
# 500/500 lets one claim fill every free slot.
BATCH_SIZE = 500
MAX_IN_FLIGHT = 500

# huey's consumer threads: one is fastest (see ``_huey_consumer``).
HUEY_WORKERS = 1
# huey is given broadcaster's durability setting (see ``_huey``).
HUEY_SYNCHRONOUS = "NORMAL"
# Give up on huey's drain after this long rather than hang (a few seconds is normal).
HUEY_DRAIN_TIMEOUT_S = 120.0

TARGET_SQLITE = 5_000.0
TARGET_POSTGRES = 2_000.0
TARGET_RATIO = 1.5

POSTGRES_URL_VAR = "BROADCASTER_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Figures:
    """One engine's timings for ``JOBS`` jobs (``nan`` when the engine could not be run)."""

    engine: str
    enqueue_s: float
    drain_s: float

    @property
    def jobs_per_s(self) -> float:
        """End-to-end rate: every job enqueued, run and settled."""
        return JOBS / (self.enqueue_s + self.drain_s)


# ---------------------------------------------------------------------------------------------
# broadcaster's queue


async def _noop(job: Job) -> Settlement:
    return Settlement(job_id=job.id, state=JobState.DONE)


def _enqueue_all(store: Store, count: int) -> float:
    """Enqueue ``count`` due no-op jobs; returns the seconds it took."""
    started = time.perf_counter()
    for first in range(0, count, ENQUEUE_CHUNK):
        now = datetime.now(UTC)
        batch = [NewJob(kind=NOOP, run_at=now) for _ in range(min(ENQUEUE_CHUNK, count - first))]
        with store.write() as conn:
            enqueue_many(conn, batch, now)
    return time.perf_counter() - started


def _drain(store: Store, options: WorkerOptions) -> tuple[float, int]:
    """Run one worker until no job is due; returns the seconds it took and the jobs it settled."""
    worker = Worker(store, {NOOP: _noop}, options=options)
    started = time.perf_counter()
    settled = asyncio.run(worker.run(until_idle=True))
    return time.perf_counter() - started, settled


def _count_done(store: Store) -> int:
    with store.read() as conn:
        query = select(func.count()).select_from(jobs).where(jobs.c.state == JobState.DONE)
        return int(conn.execute(query).scalar_one())


def bench_broadcaster(engine: str, url: str, options: WorkerOptions) -> Figures:
    """Enqueue and drain ``JOBS`` jobs in the (empty) database at ``url``."""
    store = open_store(url)
    try:
        enqueue_s = _enqueue_all(store, JOBS)
        drain_s, settled = _drain(store, options)
        done = _count_done(store)
    finally:
        store.close()
    if settled != JOBS or done != JOBS:
        raise RuntimeError(f"{engine}: {settled} settled, {done} done; expected {JOBS}")
    return Figures(engine, enqueue_s, drain_s)


def worker_options(
    batch_size: int = BATCH_SIZE, max_in_flight: int = MAX_IN_FLIGHT
) -> WorkerOptions:
    """The options under test (a sweep may pass others)."""
    return WorkerOptions(batch_size=batch_size, max_in_flight=max_in_flight)


# ---------------------------------------------------------------------------------------------
# PostgreSQL: a schema of its own for the run


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A new, empty schema on the server and a URL whose search_path points at it; dropped after."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base_url).update_query_dict(
            {"options": f"-csearch_path={schema}", "connect_timeout": "5"}
        )
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def bench_postgres(options: WorkerOptions) -> Figures:
    """broadcaster on PostgreSQL, or ``nan`` figures (and a line saying why) without a server."""
    base_url = os.environ.get(POSTGRES_URL_VAR, DEFAULT_POSTGRES_URL)
    try:
        with postgres_schema(base_url) as url:
            return bench_broadcaster("postgresql", url, options)
    except (OperationalError, ConfigError, NoSuchModuleError, ImportError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        shown = make_url(base_url).render_as_string(hide_password=True)
        print(f"PostgreSQL skipped: cannot use {shown} ({POSTGRES_URL_VAR}): {first_line}")
        return Figures("postgresql", math.nan, math.nan)


# ---------------------------------------------------------------------------------------------
# huey


class _Countdown:
    """Set once ``total`` tasks have signalled completion (called from huey's worker threads)."""

    def __init__(self, total: int) -> None:
        self.remaining = total
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, _signal: str, _task: Any, *_args: Any, **_kwargs: Any) -> None:
        with self._lock:
            self.remaining -= 1
            if self.remaining <= 0:
                self.finished.set()


def _huey(path: Path, synchronous: str) -> Any:
    """A SqliteHuey in ``path`` with the same durability as broadcaster's store.

    Both run WAL. huey's ``fsync`` switch offers only FULL (its default: an fsync per commit,
    which costs it 4x here, ~2,500 jobs/s) or OFF (~15% faster than NORMAL, but it gives up
    crash safety broadcaster keeps); broadcaster runs ``synchronous=NORMAL``, so huey gets
    exactly that through a one-line storage subclass. ``results=False``: a no-op has no result
    worth storing, and broadcaster stores none either.
    """
    from huey import SqliteHuey
    from huey.storage import SqliteStorage

    class Storage(SqliteStorage):  # type: ignore[misc]
        def _create_connection(self) -> Any:
            conn = super()._create_connection()
            conn.execute(f"pragma synchronous={synchronous}")
            return conn

    return SqliteHuey("bench", filename=str(path), results=False, storage_class=Storage)


def _huey_consumer(huey: Any, workers: int) -> Any:
    """huey's consumer in its fastest configuration for a full queue.

    Thread workers: huey serialises every SqliteStorage call through one connection and lock,
    so processes would only add fights over the file. One thread beats two or four (measured:
    ~9,800 vs ~8,300 and ~8,200 jobs/s, and more erratic): extra threads add GIL and lock
    hand-offs for no parallelism. Polling (``initial_delay``, ``backoff``, ``max_delay``) only
    runs when a worker finds the queue empty, which here happens once, at the very end (huey's
    defaults give the same figure); it is set short so a worker never sleeps while work is due.
    No periodic tasks and no health checks: nothing in this run needs them.
    """
    return huey.create_consumer(
        workers=workers,
        worker_type="thread",
        periodic=False,
        initial_delay=0.001,
        backoff=1.0,
        max_delay=0.01,
        check_worker_health=False,
    )


@contextlib.contextmanager
def _own_signal_handlers() -> Iterator[None]:
    """Put back the handlers huey's consumer installs for SIGINT, SIGTERM and SIGHUP."""
    numbers = [
        signal.SIGINT,
        signal.SIGTERM,
        *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else []),
    ]
    saved = {number: signal.getsignal(number) for number in numbers}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def bench_huey(
    directory: Path, workers: int = HUEY_WORKERS, synchronous: str = HUEY_SYNCHRONOUS
) -> Figures:
    """Enqueue ``JOBS`` no-op tasks into a SqliteHuey, then drain them with its consumer.

    The drain is timed from starting the consumer until the last task has signalled completion
    (huey emits it after deleting the task from the queue and running it); the consumer is then
    stopped gracefully and the queue checked to be empty.
    """
    from huey.signals import SIGNAL_COMPLETE

    huey = _huey(directory / "huey.db", synchronous)

    def noop() -> None:
        """The task: nothing."""

    task: Callable[[], Any] = huey.task()(noop)
    countdown = _Countdown(JOBS)
    huey.signal(SIGNAL_COMPLETE)(countdown)

    started = time.perf_counter()
    for _ in range(JOBS):
        task()
    enqueue_s = time.perf_counter() - started

    consumer = _huey_consumer(huey, workers)
    with _own_signal_handlers():
        started = time.perf_counter()
        consumer.start()
        countdown.finished.wait(HUEY_DRAIN_TIMEOUT_S)
        drain_s = time.perf_counter() - started
        consumer.stop(graceful=True)
    left = huey.pending_count()
    huey.storage.close()
    if countdown.remaining or left:
        raise RuntimeError(f"huey: {countdown.remaining} not completed, {left} still queued")
    return Figures("huey SqliteHuey", enqueue_s, drain_s)


# ---------------------------------------------------------------------------------------------
# Report


def _mark(value: float, target: float) -> str:
    return "✓" if value >= target else "✗"


def _row(figures: Figures, target: str) -> str:
    return (
        f"{figures.engine:<18} {figures.enqueue_s:>10.3f} {figures.drain_s:>10.3f} "
        f"{figures.jobs_per_s:>12,.0f}   {target}"
    )


def report(sqlite: Figures, postgres: Figures, huey: Figures) -> None:
    """Print the table, the targets and (last) the RESULT line."""
    ratio = sqlite.jobs_per_s / huey.jobs_per_s
    print(
        f"{JOBS:,} no-op jobs, one worker; batch_size={BATCH_SIZE}, max_in_flight={MAX_IN_FLIGHT}"
    )
    print(f"{'engine':<18} {'enqueue s':>10} {'drain s':>10} {'jobs/s':>12}   target")
    sqlite_target = f"≥ {TARGET_SQLITE:,.0f} {_mark(sqlite.jobs_per_s, TARGET_SQLITE)}"
    print(_row(sqlite, sqlite_target))
    postgres_mark = (
        "n/a" if math.isnan(postgres.jobs_per_s) else _mark(postgres.jobs_per_s, TARGET_POSTGRES)
    )
    print(_row(postgres, f"≥ {TARGET_POSTGRES:,.0f} {postgres_mark}"))
    print(_row(huey, f"(peer; {HUEY_WORKERS} thread worker)"))
    print(
        f"ratio vs huey (broadcaster on SQLite / SqliteHuey, end to end): {ratio:.2f}x   "
        f"target ≥ {TARGET_RATIO}x {_mark(ratio, TARGET_RATIO)}"
    )
    print(
        f"RESULT sqlite_jobs_per_s={sqlite.jobs_per_s:.0f} "
        f"postgres_jobs_per_s={_rate(postgres)} "
        f"huey_jobs_per_s={huey.jobs_per_s:.0f} ratio_vs_huey={ratio:.2f}"
    )


def _rate(figures: Figures) -> str:
    return "nan" if math.isnan(figures.jobs_per_s) else f"{figures.jobs_per_s:.0f}"


def main() -> None:
    """Run the three engines one after the other and report."""
    options = worker_options()
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as folder:
        directory = Path(folder)
        sqlite = bench_broadcaster("sqlite", f"sqlite:///{directory / 'queue.db'}", options)
        postgres = bench_postgres(options)
        huey = bench_huey(directory)
    report(sqlite, postgres, huey)


if __name__ == "__main__":
    main()
