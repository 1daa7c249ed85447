"""Leases under stress: slow sends, stopped workers, fast clocks — each delivery exactly once.

The workspace's lease is 5 s (tests/queue/conftest.py); the recorder plays the platform over real
HTTP and counts the *effects* (a post happens when it answers 2xx, whether or not the worker
lives to read the answer).
"""

from __future__ import annotations

import signal
from collections import Counter

import pytest
from sqlalchemy import select

from broadcaster.app import App
from broadcaster.dispatch import dispatch_revision
from broadcaster.reports import announcement_status
from broadcaster.store.schema import jobs
from tests.queue.conftest import Workers, approved, fan_out, tally, wait_for, work_until
from tests.queue.recorder import Answer, Recorder

pytestmark = pytest.mark.slow

BORGHOLM = "web-borgholm"


def one_delivery(app: App) -> int:
    announcement_id = approved(app, to=(BORGHOLM,))
    dispatch_revision(app, "kommunikator", announcement_id)
    return announcement_id


def only_delivery(app: App, announcement_id: int) -> dict[str, object]:
    (delivery,) = announcement_status(app, announcement_id)["deliveries"]
    return delivery


def test_a_send_longer_than_the_lease_is_made_once_and_its_receipt_kept(
    queue_app: App, recorder: Recorder
) -> None:
    """Found on main: with a 5 s lease and a 7 s send, one worker alone posted twice."""
    recorder.state.latency = 7.0
    announcement_id = one_delivery(queue_app)
    work_until(queue_app, lambda: tally(queue_app, announcement_id) == {"sent": 1}, timeout=40)
    delivery = only_delivery(queue_app, announcement_id)
    assert len(recorder.state.requests) == 1
    assert recorder.state.verifies == 0  # its own answer was recorded, not found by asking
    assert (delivery["attempts"], str(delivery["platform_id"])[:4]) == (1, "rec-")
    assert Counter(recorder.state.effects.values()) == {1: 1}


def test_a_failure_after_the_lease_is_the_outcome_recorded(
    queue_app: App, recorder: Recorder
) -> None:
    # The 503 asks for a 2 s pause, so the recorded failure is there to be seen before the retry.
    recorder.state.scripts[BORGHOLM].append(Answer(503, retry_after=2, delay=7.0))
    announcement_id = one_delivery(queue_app)
    seen: list[object] = []

    def retrying_then_sent() -> bool:
        delivery = only_delivery(queue_app, announcement_id)
        seen.append((delivery["state"], delivery["last_error"]))
        return delivery["state"] == "sent"

    work_until(queue_app, retrying_then_sent, timeout=40)
    assert ("retrying", "TransientError: HTTP 503") in seen  # the slow failure was recorded
    assert only_delivery(queue_app, announcement_id)["attempts"] == 2
    assert len(recorder.state.requests) == 2 and recorder.state.verifies == 0
    assert Counter(recorder.state.effects.values()) == {1: 1}


def test_a_worker_stopped_past_its_lease_is_overtaken_and_nothing_is_sent_twice(
    queue_app: App, recorder: Recorder, workers: Workers
) -> None:
    recorder.state.latency = 2.0
    announcement_id = one_delivery(queue_app)
    first = workers.start()
    wait_for(lambda: len(recorder.state.requests) == 1, 30, "the first worker's request")
    workers.pause(first, queue_app.store)  # frozen while it waits for the platform's answer
    wait_for(lambda: sum(recorder.state.effects.values()) == 1, 30, "the post to land")
    second = workers.start()
    wait_for(lambda: tally(queue_app, announcement_id) == {"sent": 1}, 60, "the takeover")
    first.send_signal(signal.SIGCONT)  # it wakes up with a receipt for a job it lost
    wait_for(lambda: "taken over" in workers.log(first), 30, "the first worker to notice")
    assert workers.stop_all() == [0, 0]
    assert len(recorder.state.requests) == 1  # the second worker asked, and did not resend
    assert recorder.state.verifies == 1
    assert Counter(recorder.state.effects.values()) == {1: 1}
    assert only_delivery(queue_app, announcement_id)["attempts"] == 1
    assert announcement_status(queue_app, announcement_id)["state"] == "sent"
    with queue_app.store.read() as conn:
        job = conn.execute(select(jobs)).one()
    assert (job.state, job.reclaims, job.lease_owner) == ("done", 1, None)
    assert second.returncode == 0


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_worker_with_a_clock_ten_minutes_fast_steals_no_lease(
    queue_app: App, recorder: Recorder, workers: Workers
) -> None:
    """Workers on several machines share PostgreSQL; one machine's clock runs 10 minutes fast."""
    recorder.state.latency = 1.0
    # 100 posts of 1 s, 32 at a time: the healthy worker is busy for ~4 s, time enough for
    # the fast one to start and claim its share.
    announcement_id = fan_out(queue_app, 100, BORGHOLM)
    workers.start()
    wait_for(lambda: len(recorder.state.requests) >= 5, 30, "the healthy worker to be busy")
    workers.start("--clock-ahead", "600")
    wait_for(lambda: tally(queue_app, announcement_id) == {"sent": 100}, 120, "every delivery")
    assert workers.stop_all() == [0, 0]
    with queue_app.store.read() as conn:
        reclaims = conn.execute(select(jobs.c.reclaims)).scalars().all()
    assert set(reclaims) == {0}  # nobody's lease was taken over ...
    assert recorder.state.verifies == 0  # ... so nothing needed verifying
    assert Counter(recorder.state.effects.values()) == {1: 100}
    assert len({pid for *_, pid in recorder.state.requests}) == 2  # both took part
