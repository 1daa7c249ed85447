"""Queue throughput on the real delivery path, against huey doing the equivalent work.

What users run is what is measured:

* **dispatch** — ``dispatch_revision``, the code behind ``broadcaster send``: one approved
  announcement to one target whose channel fans out to N recipients (as an SMS list does), so
  N deliveries and N jobs in the one dispatch transaction;
* **drain** — ``run_worker(until_idle=True)``, the code behind ``broadcaster worker
  --until-idle``, in a process of its own at the **default** ``[queue]`` options (batch 100,
  64 in flight, 300 s lease): each job's delivery is read, marked ``sending``, "sent" through a
  recording channel that answers at once, and settled (delivery row, job row, announcement);
* **end-to-end deliveries/s** = N / (dispatch + drain).

The peer is huey's ``SqliteHuey`` doing the equivalent work in the same kind of SQLite file: the
N rows are created, N tasks are enqueued (huey has no batch enqueue), and each task reads its row
and updates it, run by huey's own consumer (one thread: the fastest setting here). Each engine
runs three times, interleaved (broadcaster on SQLite, on PostgreSQL with one worker and with
two, huey), and the median is reported. Then, on SQLite: a 26,000-recipient fan-out to one
target with ``concurrency = 64`` (dispatch time, drain time, job settlements written per
delivery), and a worker draining 250,000 jobs (its peak RSS).

Every run checks that each recipient was sent exactly once and the announcement settled
``sent``; figures are printed against the targets, never asserted.

Run: ``.venv/bin/python bench/queue_throughput.py`` (a few minutes). PostgreSQL comes from
``BROADCASTER_BENCH_POSTGRES_URL`` (default: the local test server); without one the run says so
and reports ``nan``. The last line is ``RESULT key=value ...`` with the same keys every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchModuleError, OperationalError

N = 20_000
N_CRISIS = 26_000
N_MEMORY = 250_000
RUNS = 3
TARGET = "web-borgholm"

TARGET_RATIO = 3.0
TARGET_SQLITE = 4_000.0
TARGET_POSTGRES = 2_000.0
TARGET_TWO_WORKERS = 1.6
TARGET_DISPATCH_26K_S = 2.0
TARGET_SETTLEMENTS = 1.05
TARGET_RSS_MB = 150.0

POSTGRES_URL_VAR = "BROADCASTER_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RECIPIENTS_VAR = "BENCH_RECIPIENTS"
HUEY_DRAIN_TIMEOUT_S = 600.0


# ---------------------------------------------------------------------------------------------
# The recording channel and the worker process


def recording_registry() -> Any:
    """A registry whose website targets fan out to ``$BENCH_RECIPIENTS`` people and record each
    send, answering at once (no platform latency: the queue's own cost is what is measured)."""
    from broadcaster.channels.base import Channel, Receipt, Rendered
    from broadcaster.channels.registry import ChannelRegistry

    class RecordingChannel(Channel):
        name: ClassVar[str] = "website"
        sent: ClassVar[set[str]] = set()
        repeats: ClassVar[int] = 0

        @classmethod
        def recipients(cls, target: Any, directory: Any) -> Sequence[str]:
            return [f"+4670{n:07d}" for n in range(int(os.environ[RECIPIENTS_VAR]))]

        def render(self, message: Any) -> Any:
            return Rendered(text=f"{message.content.title}: {message.content.body}")

        async def send(self, message: Any, rendered: Any) -> Any:
            key = message.idempotency_key
            if key in RecordingChannel.sent:
                RecordingChannel.repeats += 1
            RecordingChannel.sent.add(key)
            return Receipt(key)

    registry = ChannelRegistry()
    registry.register_class("website", RecordingChannel)
    return registry


def worker_main(config: str) -> None:
    """``--worker CONFIG``: the real worker loop, started when the parent says go."""
    from broadcaster.app import open_app
    from broadcaster.worker_runtime import run_worker
    from broadcaster.workspace import load_workspace

    app = open_app(load_workspace(Path(config), {}))
    app.registry = recording_registry()
    settlements = 0

    def count(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        nonlocal settlements
        if many and statement.startswith("UPDATE jobs SET state="):
            settlements += len(params)

    event.listen(app.store.engine, "before_cursor_execute", count)
    print("ready", flush=True)
    sys.stdin.readline()
    settled = asyncio.run(run_worker(app, until_idle=True))
    channel = app.registry.adapter_class("website")
    report = {
        "settled": settled,
        "sent": len(channel.sent),  # type: ignore[attr-defined]
        "repeats": channel.repeats,  # type: ignore[attr-defined]
        "settlements": settlements,
        "max_rss_kb": peak_rss_kb(),
    }
    app.close()
    print(json.dumps(report), flush=True)


def peak_rss_kb() -> int:
    """This process's peak resident memory. Linux's VmHWM, not ``ru_maxrss``: that one carries
    over the parent's peak across fork and exec, so a worker started by a bench process that
    had just dispatched 250,000 rows would report the bench's memory, not its own."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_workers(config: Path, count: int) -> tuple[float, list[dict[str, Any]]]:
    """Start ``count`` worker processes, let them go together, wait until all are idle."""
    env = {**os.environ, RECIPIENTS_VAR: "0"}
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(count)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    reports = [json.loads(process.communicate(timeout=1800)[0]) for process in processes]
    elapsed = time.perf_counter() - started
    if any(process.returncode for process in processes):
        raise RuntimeError("a worker process failed")
    return elapsed, reports


# ---------------------------------------------------------------------------------------------
# broadcaster: one dispatch, then workers


@dataclass(frozen=True)
class Run:
    """One broadcaster run: N deliveries dispatched and drained."""

    count: int
    dispatch_s: float
    drain_s: float
    settlements: int
    max_rss_mb: float

    @property
    def per_s(self) -> float:
        return self.count / (self.dispatch_s + self.drain_s)


def workspace(folder: Path, url: str) -> Path:
    """An example workspace on ``url`` whose Borgholm site target takes 64 sends at once."""
    from broadcaster.scaffold import init_workspace

    root = folder / f"ws-{uuid.uuid4().hex[:8]}"
    init_workspace(root)
    config = root / "broadcaster.toml"
    toml = config.read_text(encoding="utf-8")
    toml = toml.replace('database_url = "sqlite:///broadcaster.db"', f'database_url = "{url}"')
    toml = toml.replace(
        'output_dir = "site/borgholm"', 'output_dir = "site/borgholm"\nconcurrency = 64'
    )
    config.write_text(toml, encoding="utf-8")
    return config


def bench_broadcaster(folder: Path, url: str, count: int, workers: int = 1) -> Run:
    """Dispatch one announcement to ``count`` recipients, drain it with ``workers`` processes."""
    from broadcaster.app import open_app
    from broadcaster.approval import approve
    from broadcaster.authoring import DraftInput, create_draft, submit
    from broadcaster.dispatch import dispatch_revision
    from broadcaster.reports import announcement_status
    from broadcaster.workspace import load_workspace

    config = workspace(folder, url)
    os.environ[RECIPIENTS_VAR] = str(count)
    app = open_app(load_workspace(config, {}))
    try:
        app.registry = recording_registry()
        draft = create_draft(
            app, "kommunikator", DraftInput(title="Läget", body="Text", to=(TARGET,))
        )
        submit(app, "kommunikator", draft.id)
        approve(app, "anna.hasselbom", draft.id)
        approve(app, "jens.odevall", draft.id)
        started = time.perf_counter()
        dispatch_revision(app, "kommunikator", draft.id)
        dispatch_s = time.perf_counter() - started
        drain_s, reports = run_workers(config, workers)
        state = announcement_status(app, draft.id)["state"]
    finally:
        app.close()
    sent = sum(r["sent"] for r in reports)
    if sent != count or any(r["repeats"] for r in reports) or state != "sent":
        raise RuntimeError(f"{count} recipients: {sent} sent, announcement {state}")
    return Run(
        count=count,
        dispatch_s=dispatch_s,
        drain_s=drain_s,
        settlements=sum(r["settlements"] for r in reports),
        max_rss_mb=max(r["max_rss_kb"] for r in reports) / 1024,
    )


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


def postgres_available() -> str | None:
    """The PostgreSQL URL to use, or None (after saying why) when it cannot be reached."""
    base_url = os.environ.get(POSTGRES_URL_VAR, DEFAULT_POSTGRES_URL)
    try:
        with postgres_schema(base_url):
            return base_url
    except (OperationalError, NoSuchModuleError, ImportError) as exc:
        shown = make_url(base_url).render_as_string(hide_password=True)
        print(f"PostgreSQL skipped: cannot use {shown} ({POSTGRES_URL_VAR}): {exc}".splitlines()[0])
        return None


def bench_postgres(folder: Path, base_url: str | None, workers: int) -> Run | None:
    if base_url is None:
        return None
    with postgres_schema(base_url) as url:
        return bench_broadcaster(folder, url, N, workers)


# ---------------------------------------------------------------------------------------------
# huey: the same work, its way


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


def bench_huey(folder: Path, count: int = N) -> Run:
    """Create ``count`` rows, enqueue a task per row, let huey's consumer read and update each.

    SqliteHuey runs WAL; it is given broadcaster's durability (``synchronous=NORMAL``, through a
    one-line storage subclass: huey's own switch offers only FULL or OFF). The tasks use the same
    file, through a connection per consumer thread.
    """
    import sqlite3

    from huey import SqliteHuey
    from huey.signals import SIGNAL_COMPLETE
    from huey.storage import SqliteStorage

    path = str(folder / f"huey-{uuid.uuid4().hex[:8]}.db")

    class Storage(SqliteStorage):  # type: ignore[misc]
        def _create_connection(self) -> Any:
            conn = super()._create_connection()
            conn.execute("pragma synchronous=NORMAL")
            return conn

    huey = SqliteHuey("bench", filename=path, results=False, storage_class=Storage)
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "conn"):
            local.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            local.conn.execute("pragma synchronous=NORMAL")
        conn: sqlite3.Connection = local.conn
        return conn

    def deliver(row_id: int) -> None:
        """The task: read the delivery, and record it sent."""
        conn = connection()
        conn.execute("BEGIN IMMEDIATE")
        state = conn.execute("SELECT state FROM deliveries WHERE id = ?", (row_id,)).fetchone()
        if state is not None and state[0] == "pending":
            conn.execute("UPDATE deliveries SET state = 'sent' WHERE id = ?", (row_id,))
        conn.execute("COMMIT")

    task: Callable[[int], Any] = huey.task()(deliver)
    countdown = _Countdown(count)
    huey.signal(SIGNAL_COMPLETE)(countdown)

    started = time.perf_counter()
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE deliveries (id INTEGER PRIMARY KEY, recipient TEXT, state TEXT)")
    setup.execute("BEGIN")
    setup.executemany(
        "INSERT INTO deliveries (id, recipient, state) VALUES (?, ?, 'pending')",
        ((n, f"+4670{n:07d}") for n in range(count)),
    )
    setup.execute("COMMIT")
    for row_id in range(count):
        task(row_id)
    dispatch_s = time.perf_counter() - started

    consumer = huey.create_consumer(
        workers=1,
        worker_type="thread",
        periodic=False,
        initial_delay=0.001,
        backoff=1.0,
        max_delay=0.01,
        check_worker_health=False,
    )
    with _own_signal_handlers():
        started = time.perf_counter()
        consumer.start()
        countdown.finished.wait(HUEY_DRAIN_TIMEOUT_S)
        drain_s = time.perf_counter() - started
        consumer.stop(graceful=True)
    left = huey.pending_count()
    huey.storage.close()
    sent = setup.execute("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]
    setup.close()
    if countdown.remaining or left or sent != count:
        raise RuntimeError(f"huey: {countdown.remaining} not completed, {left} queued, {sent} sent")
    return Run(count=count, dispatch_s=dispatch_s, drain_s=drain_s, settlements=0, max_rss_mb=0)


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


# ---------------------------------------------------------------------------------------------
# Report


def median(runs: Sequence[Run | None]) -> float:
    rates = [run.per_s for run in runs if run is not None]
    return statistics.median(rates) if rates else math.nan


def mark(value: float, target: float, *, at_most: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    return "✓" if (value <= target if at_most else value >= target) else "✗"


def fmt(value: float, digits: int = 0) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def main() -> None:
    """Run everything, print the figures against the targets, and (last) the RESULT line."""
    results: dict[str, list[Run | None]] = {"sqlite": [], "pg1": [], "pg2": [], "huey": []}
    postgres = postgres_available()
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as name:
        folder = Path(name)
        for number in range(RUNS):
            results["sqlite"].append(
                bench_broadcaster(folder, f"sqlite:///{folder}/q{number}.db", N)
            )
            results["pg1"].append(bench_postgres(folder, postgres, 1))
            results["pg2"].append(bench_postgres(folder, postgres, 2))
            results["huey"].append(bench_huey(folder))
            print(
                f"run {number + 1}/{RUNS}: "
                + ", ".join(
                    f"{k} {fmt(v[-1].per_s if v[-1] else math.nan)}/s" for k, v in results.items()
                ),
                flush=True,
            )
        crisis = bench_broadcaster(folder, f"sqlite:///{folder}/crisis.db", N_CRISIS)
        memory = bench_broadcaster(folder, f"sqlite:///{folder}/memory.db", N_MEMORY)

    sqlite, pg1, pg2, huey = (median(results[k]) for k in ("sqlite", "pg1", "pg2", "huey"))
    ratio, two = sqlite / huey, pg2 / pg1
    per_delivery = crisis.settlements / crisis.count
    print(
        f"\n{N:,} recipients, one target, default [queue] options; median of {RUNS} runs "
        "(end to end: dispatch + drain)"
    )
    print(
        f"  broadcaster, SQLite, 1 worker     {fmt(sqlite):>8} deliveries/s   "
        f"target ≥ {TARGET_SQLITE:,.0f} {mark(sqlite, TARGET_SQLITE)}"
    )
    print(
        f"  broadcaster, PostgreSQL, 1 worker {fmt(pg1):>8} deliveries/s   "
        f"target ≥ {TARGET_POSTGRES:,.0f} {mark(pg1, TARGET_POSTGRES)}"
    )
    print(
        f"  broadcaster, PostgreSQL, 2 workers{fmt(pg2):>9} deliveries/s   "
        f"{fmt(two, 2)}x one worker, target ≥ {TARGET_TWO_WORKERS}x {mark(two, TARGET_TWO_WORKERS)}"
    )
    print(f"  huey SqliteHuey, 1 thread         {fmt(huey):>8} tasks/s        (peer)")
    print(
        f"  ratio vs huey (SQLite)            {fmt(ratio, 2):>8}x              "
        f"target ≥ {TARGET_RATIO}x {mark(ratio, TARGET_RATIO)}"
    )
    print(f"\n{N_CRISIS:,} recipients, one target with concurrency = 64 (SQLite)")
    print(
        f"  dispatch {crisis.dispatch_s:.2f} s (target ≤ {TARGET_DISPATCH_26K_S} s "
        f"{mark(crisis.dispatch_s, TARGET_DISPATCH_26K_S, at_most=True)}), "
        f"drain {crisis.drain_s:.2f} s, {per_delivery:.3f} job settlements per delivery "
        f"(target ≤ {TARGET_SETTLEMENTS} {mark(per_delivery, TARGET_SETTLEMENTS, at_most=True)})"
    )
    print(
        f"\n{N_MEMORY:,} recipients drained by one worker (SQLite): peak RSS "
        f"{memory.max_rss_mb:.0f} MB (target ≤ {TARGET_RSS_MB:.0f} MB "
        f"{mark(memory.max_rss_mb, TARGET_RSS_MB, at_most=True)}), "
        f"{memory.per_s:,.0f} deliveries/s"
    )
    print(
        f"RESULT sqlite_jobs_per_s={fmt(sqlite)} postgres_jobs_per_s={fmt(pg1)} "
        f"huey_jobs_per_s={fmt(huey)} ratio_vs_huey={fmt(ratio, 2)} "
        f"dispatch_26k_s={crisis.dispatch_s:.2f} drain_26k_s={crisis.drain_s:.2f} "
        f"settlements_per_delivery={per_delivery:.3f} "
        f"postgres_two_workers_ratio={fmt(two, 2)} worker_peak_rss_mb={memory.max_rss_mb:.0f}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2])
    else:
        main()
