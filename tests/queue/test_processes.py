"""Worker processes on one database: work is shared, crashes lose nothing, nothing runs twice.

Each worker is a real process running the real worker loop (tests/queue/worker_process.py); the
platform is the recorder, which can say whether it already holds a delivery (the verify step).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.app import App
from broadcaster.store.schema import deliveries, jobs
from tests.queue.conftest import Workers, fan_out, wait_for
from tests.queue.recorder import Recorder

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
JOBS = 2000


def sent_count(app: App) -> int:
    with app.store.read() as conn:
        query = select(func.count()).where(deliveries.c.state == "sent")
        return int(conn.execute(query.select_from(deliveries)).scalar_one())


def assert_each_effect_exactly_once(app: App, recorder: Recorder) -> None:
    effects = recorder.state.effects
    assert len(effects) == JOBS
    assert Counter(effects.values()) == {1: JOBS}
    with app.store.read() as conn:
        job_states = Counter(conn.execute(select(jobs.c.state)).scalars())
        delivery_states = Counter(conn.execute(select(deliveries.c.state)).scalars())
    assert delivery_states == {"sent": JOBS}
    assert job_states == {"done": JOBS}


def test_worker_processes_share_the_jobs_and_each_effect_happens_once(
    queue_app: App, recorder: Recorder, workers: Workers, database_url: str
) -> None:
    count = 4 if database_url.startswith("postgresql") else 2
    fan_out(queue_app, JOBS, "web-borgholm")
    for _ in range(count):
        workers.start()
    wait_for(lambda: sent_count(queue_app) == JOBS, 180, f"{JOBS} deliveries by {count} workers")
    assert workers.stop_all() == [0] * count
    assert_each_effect_exactly_once(queue_app, recorder)
    with recorder.state.lock:
        served_by = Counter(pid for *_, pid in recorder.state.requests)
    assert len(served_by) == count  # every process took part
    assert sum(served_by.values()) == JOBS  # and no request was made twice


def test_sigkill_mid_run_loses_nothing_and_sends_nothing_twice(
    queue_app: App, recorder: Recorder, workers: Workers
) -> None:
    """Kill the worker at several points while calls are in flight; a new one takes over."""
    recorder.state.latency = 0.02  # so that a kill lands in the middle of platform calls
    fan_out(queue_app, JOBS, "web-borgholm")
    victim = workers.start()
    for point in (150, 700, 1300):
        wait_for(lambda: len(recorder.state.requests) >= point, 120, f"{point} requests")  # noqa: B023
        victim.kill()  # SIGKILL: no chance to release anything
        victim.communicate(timeout=30)
        victim = workers.start()
    wait_for(lambda: sent_count(queue_app) == JOBS, 180, "every delivery after the kills")
    workers.stop_all()
    assert_each_effect_exactly_once(queue_app, recorder)
    assert recorder.state.verifies > 0  # interrupted deliveries were verified, not resent


def test_sigterm_finishes_or_releases_in_flight_work(
    queue_app: App, recorder: Recorder, workers: Workers
) -> None:
    recorder.state.latency = 0.5
    fan_out(queue_app, 100, "web-borgholm")
    first = workers.start()
    wait_for(lambda: len(recorder.state.requests) >= 10, 60, "calls in flight")
    started = time.monotonic()
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=30)
    assert first.returncode == 0
    assert time.monotonic() - started < 15  # it stopped within its grace period, not at the end
    with queue_app.store.read() as conn:
        leased = conn.execute(select(jobs.c.id).where(jobs.c.lease_owner.is_not(None))).all()
    assert leased == []  # nothing is left locked to a worker that is gone
    recorder.state.latency = 0.0
    workers.start()
    wait_for(lambda: sent_count(queue_app) == 100, 60, "the rest by a new worker")
    workers.stop_all()
    assert Counter(recorder.state.effects.values()) == {1: 100}
