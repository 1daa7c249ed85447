"""Fixtures for the queue: a workspace tuned for fast retries, the recorder, fan-out helpers."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text, update

from broadcaster.app import App, open_app
from broadcaster.approval import approve
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.model import AnnouncementState
from broadcaster.queue.jobs import JobKind, enqueue_revision
from broadcaster.reports import announcement_status
from broadcaster.store.announcements import get_announcement
from broadcaster.store.database import Store
from broadcaster.store.deliveries import NewDelivery, create_deliveries
from broadcaster.store.schema import announcements
from broadcaster.worker_runtime import run_worker, worker_options
from broadcaster.workspace import load_workspace
from tests.conftest import set_database_url
from tests.queue.recorder import Recorder, recorder_registry

QUEUE_SETTINGS = """
[queue]
retry_base_seconds = 0.05
retry_cap_seconds = 0.5
lease_seconds = 5
batch_size = 50
max_in_flight = 32
shutdown_grace_seconds = 2
"""


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as running:
        yield running


@pytest.fixture
def queue_config(workspace_dir: Path, database_url: str) -> Path:
    """The workspace's config on the test database, with fast retries and short leases."""
    set_database_url(workspace_dir, database_url)
    path = workspace_dir / "broadcaster.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("[approval]", QUEUE_SETTINGS + "\n[approval]", 1), encoding="utf-8"
    )
    return path


@pytest.fixture
def queue_app(queue_config: Path, recorder: Recorder) -> Iterator[App]:
    """An App with the real clock whose website targets deliver to the recorder."""
    application = open_app(load_workspace(queue_config, {}))
    application.registry = recorder_registry(recorder.url)
    yield application
    application.close()


def approved(app: App, title: str = "Läget", to: tuple[str, ...] = ()) -> int:
    draft = create_draft(app, "kommunikator", DraftInput(title=title, body="Text", to=to))
    submit(app, "kommunikator", draft.id)
    approve(app, "anna.hasselbom", draft.id)
    approve(app, "jens.odevall", draft.id)
    return draft.id


def fan_out(app: App, count: int, target: str = "web-borgholm") -> int:
    """An approved announcement dispatched as ``count`` deliveries to one target (one per
    recipient, as an SMS list is), queued in one transaction; returns the announcement id."""
    announcement_id = approved(app, to=(target,))
    queue_recipients(app, announcement_id, (target,), count)
    return announcement_id


def queue_recipients(app: App, announcement_id: int, targets: tuple[str, ...], count: int) -> None:
    """Dispatch an approved announcement as ``count`` deliveries to each target, in one
    transaction, as ``send`` does for a list of recipients."""
    now = app.clock()
    with app.store.write() as conn:
        revision = get_announcement(conn, announcement_id).revision
        rows = [
            NewDelivery(target=target, channel="website", recipient=f"+4670{number:07d}")
            for target in targets
            for number in range(count)
        ]
        create_deliveries(
            conn, announcement_id=announcement_id, revision_id=revision.id, rows=rows, now=now
        )
        enqueue_revision(
            conn, revision_id=revision.id, kind=JobKind.DELIVER, run_at=now, priority=2, now=now
        )
        conn.execute(
            update(announcements)
            .where(announcements.c.id == announcement_id)
            .values(state=AnnouncementState.DISPATCHING)
        )


def work_until(app: App, done: object, timeout: float = 30.0, **options: object) -> None:
    """Run a worker (real clock) until ``done()`` is true; fail if it takes longer than timeout."""

    async def main() -> None:
        stop = asyncio.Event()
        settings = replace(worker_options(app), poll_interval=0.05, **options)
        worker = asyncio.create_task(run_worker(app, stop=stop, options=settings))
        deadline = time.monotonic() + timeout
        # The check reads the database: run it in a thread, never on the worker's event loop.
        while not await asyncio.to_thread(done):  # type: ignore[arg-type]
            if time.monotonic() > deadline:
                stop.set()
                await worker
                raise AssertionError("the queue did not get there in time")
            await asyncio.sleep(0.05)
        stop.set()
        await worker

    asyncio.run(main())


def states(app: App, announcement_id: int) -> dict[str, str]:
    """Target -> state, for announcements with one delivery per target."""
    return {
        d["target"]: d["state"] for d in announcement_status(app, announcement_id)["deliveries"]
    }


def tally(app: App, announcement_id: int) -> Counter[str]:
    """How many deliveries are in each state (for one-per-recipient fan-outs, whose status
    sums up each target's recipients in one entry with their ``states``)."""
    counts: Counter[str] = Counter()
    for delivery in announcement_status(app, announcement_id)["deliveries"]:
        counts.update(delivery.get("states") or {delivery["state"]: 1})
    return counts


# ---------------------------------------------------------------------------------------------
# Worker processes (the real worker loop in its own process, killed and stopped for real)

REPO = Path(__file__).resolve().parents[2]


class Workers:
    """Starts and stops worker processes for one workspace; their logs go to files."""

    def __init__(self, config: Path, recorder: Recorder) -> None:
        self.config = config
        self.recorder = recorder
        self.processes: list[subprocess.Popen[str]] = []
        self.logs: dict[int, Path] = {}

    def start(self, *options: str) -> subprocess.Popen[str]:
        log_path = self.config.parent / f"worker-{len(self.logs)}.log"
        with open(log_path, "w", encoding="utf-8") as log_file:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.queue.worker_process",
                    str(self.config),
                    self.recorder.url,
                    *options,
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        assert process.stdout is not None
        ready = process.stdout.readline().strip()
        assert ready == "ready", log_path.read_text(encoding="utf-8")
        self.processes.append(process)
        self.logs[process.pid] = log_path
        return process

    def pause(self, process: subprocess.Popen[str], store: Store) -> None:
        """SIGSTOP the worker, at a moment it is inside no database transaction.

        A worker frozen inside a write holds SQLite's only write lock (or PostgreSQL's row
        locks) for as long as it stays frozen, and every other worker waits on it: that is the
        database, not the queue. (On PostgreSQL the server ends such a transaction after
        ``idle_in_transaction_session_timeout``; see broadcaster/store/database.py.) Tests of
        leases want the worker frozen between transactions, so this resumes it for a moment
        and tries again when it stopped inside one.
        """
        for _ in range(200):
            process.send_signal(signal.SIGSTOP)
            time.sleep(0.02)  # the signal is delivered asynchronously
            if not _holds_a_transaction(store):
                return
            process.send_signal(signal.SIGCONT)
            time.sleep(0.005)
        raise AssertionError("the worker never paused outside a transaction")

    def log(self, process: subprocess.Popen[str]) -> str:
        """What the worker has logged so far."""
        return self.logs[process.pid].read_text(encoding="utf-8")

    def stop_all(self) -> list[int]:
        codes = []
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a stopped process cannot see SIGTERM
                process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
            codes.append(process.returncode)
        return codes


def _holds_a_transaction(store: Store) -> bool:
    """Whether some other connection is in the middle of a transaction on the database."""
    if store.dialect == "sqlite":
        # A connection of its own, outside the store's engine: no busy wait, no BEGIN hook.
        probe = sqlite3.connect(str(store.engine.url.database), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return True  # the write lock is held
        finally:
            probe.close()
        return False
    with store.engine.connect() as conn:
        busy = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
        ).scalar_one()
    return bool(busy)


@pytest.fixture
def workers(queue_config: Path, recorder: Recorder) -> Iterator[Workers]:
    running = Workers(queue_config, recorder)
    yield running
    for process in running.processes:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
        process.communicate(timeout=30)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
