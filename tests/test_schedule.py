"""A scheduled send (`send --at`): visible, movable and taken back, never half-cancelled.

On SQLite and PostgreSQL, with a clock moved by hand.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from broadcaster.app import App
from broadcaster.errors import InputError, StateError
from broadcaster.queue.jobs import JobState, claim
from broadcaster.reports import announcement_list, announcement_status, audit_log, overview
from broadcaster.schedule import check_send_time, send_announcement, unschedule
from broadcaster.store.schema import deliveries, jobs
from tests.conftest import FakeClock
from tests.queue.conftest import approved

BORGHOLM = "web-borgholm"
ZONE = "Europe/Stockholm"
# FakeClock starts at 2026-12-12 19:30 UTC, a Saturday, 20:30 in Stockholm.
EVENING = datetime(2026, 12, 12, 21, 0, tzinfo=UTC)  # lör 12 dec 22:00


def job_rows(app: App) -> list[tuple[str, datetime, int]]:
    with app.store.read() as conn:
        rows = conn.execute(
            select(jobs.c.state, jobs.c.run_at, jobs.c.attempts).order_by(jobs.c.id)
        )
        return [(row.state, row.run_at, row.attempts) for row in rows]


def delivery_count(app: App) -> int:
    with app.store.read() as conn:
        return len(conn.execute(select(deliveries.c.id)).all())


def claim_one(app: App, target: str = BORGHOLM) -> None:
    with app.store.write() as conn:
        taken = claim(
            conn,
            owner="w1",
            wants={target: 1},
            limit=1,
            lease=timedelta(minutes=5),
            now=app.clock(),
        )
    assert len(taken) == 1


def test_a_scheduled_send_shows_its_time_in_status_list_and_json(db_app: App) -> None:
    announcement_id = approved(db_app)
    outcome = send_announcement(db_app, "kommunikator", announcement_id, at=EVENING)
    assert (outcome.at, outcome.previous) == (EVENING, None)
    expected = {
        "kind": "once",
        "at": "2026-12-12T21:00:00+00:00",
        "local": "lör 12 dec 22:00",
        "timezone": ZONE,
    }
    assert announcement_status(db_app, announcement_id)["schedule"] == expected
    (listed,) = announcement_list(db_app)["announcements"]
    assert listed["schedule"] == expected
    assert overview(db_app)["announcements"][0]["schedule"] == expected
    assert {(state, run_at) for state, run_at, _ in job_rows(db_app)} == {("queued", EVENING)}


def test_an_immediate_send_has_no_schedule(db_app: App) -> None:
    announcement_id = approved(db_app)
    send_announcement(db_app, "kommunikator", announcement_id)
    assert announcement_status(db_app, announcement_id)["schedule"] is None
    assert announcement_list(db_app)["announcements"][0]["schedule"] is None


def test_taking_a_send_back_leaves_it_approved_and_sendable_again(db_app: App) -> None:
    announcement_id = approved(db_app)
    send_announcement(db_app, "kommunikator", announcement_id, at=EVENING)
    outcome = unschedule(db_app, "kommunikator", announcement_id)
    assert outcome.previous == EVENING
    status = announcement_status(db_app, announcement_id)
    assert (status["state"], status["schedule"], status["deliveries"]) == ("approved", None, [])
    assert job_rows(db_app) == [] and delivery_count(db_app) == 0
    events = audit_log(db_app, announcement_id)["events"]
    assert events[-1]["action"] == "unscheduled"
    assert events[-1]["details"]["run_at"] == EVENING.isoformat()
    # The same approved revision can be sent again: nothing of the first send is in the way.
    send_announcement(db_app, "kommunikator", announcement_id, at=EVENING + timedelta(hours=1))
    assert announcement_status(db_app, announcement_id)["state"] == "dispatching"


def test_moving_a_send_changes_every_job_and_is_audited(db_app: App) -> None:
    announcement_id = approved(db_app)
    send_announcement(db_app, "kommunikator", announcement_id, at=EVENING)
    later = EVENING + timedelta(days=1)
    outcome = send_announcement(db_app, "kommunikator", announcement_id, at=later)
    assert (outcome.at, outcome.previous) == (later, EVENING)
    assert {run_at for _, run_at, _ in job_rows(db_app)} == {later}
    assert announcement_status(db_app, announcement_id)["schedule"]["local"] == "sön 13 dec 22:00"
    event = audit_log(db_app, announcement_id)["events"][-1]
    assert event["action"] == "rescheduled"
    assert event["details"]["previous_run_at"] == EVENING.isoformat()


def test_a_time_just_past_or_now_sends_at_once(db_app: App, clock: FakeClock) -> None:
    announcement_id = approved(db_app)
    outcome = send_announcement(
        db_app, "kommunikator", announcement_id, at=clock.now - timedelta(seconds=30)
    )
    assert outcome.at is None  # reported as sent now, not as scheduled
    assert {run_at for _, run_at, _ in job_rows(db_app)} == {clock.now}


def test_a_scheduled_send_can_be_moved_to_now(db_app: App, clock: FakeClock) -> None:
    announcement_id = approved(db_app)
    send_announcement(db_app, "kommunikator", announcement_id, at=EVENING)
    outcome = send_announcement(db_app, "kommunikator", announcement_id, at=clock.now)
    assert (outcome.at, outcome.previous) == (clock.now, EVENING)
    assert {run_at for _, run_at, _ in job_rows(db_app)} == {clock.now}
    assert announcement_status(db_app, announcement_id)["schedule"] is None


def test_send_without_a_time_does_not_silently_replace_a_schedule(db_app: App) -> None:
    announcement_id = approved(db_app)
    send_announcement(db_app, "kommunikator", announcement_id, at=EVENING)
    with pytest.raises(StateError, match="already scheduled for lör 12 dec 22:00") as caught:
        send_announcement(db_app, "kommunikator", announcement_id)
    assert "--at now" in str(caught.value) and "--cancel" in str(caught.value)


@pytest.mark.parametrize("action", ["cancel", "move"])
def test_a_send_a_worker_has_started_is_refused_whole(
    db_app: App, clock: FakeClock, action: str
) -> None:
    announcement_id = approved(db_app)
    send_announcement(db_app, "kommunikator", announcement_id, at=EVENING)
    clock.now = EVENING + timedelta(seconds=1)
    claim_one(db_app)  # one of the two targets is in a worker's hands
    before = job_rows(db_app)
    later = EVENING + timedelta(days=1)

    def change() -> object:
        if action == "cancel":
            return unschedule(db_app, "kommunikator", announcement_id)
        return send_announcement(db_app, "kommunikator", announcement_id, at=later)

    with pytest.raises(StateError, match="it has started") as caught:
        change()
    assert f"{BORGHOLM}: 1 claimed" in str(caught.value)
    assert "nothing was changed" in str(caught.value)
    assert job_rows(db_app) == before  # the other target's job was not touched either
    assert delivery_count(db_app) == 2
    assert announcement_status(db_app, announcement_id)["state"] == "dispatching"


def test_a_send_already_delivered_cannot_be_taken_back(db_app: App, clock: FakeClock) -> None:
    announcement_id = approved(db_app)
    send_announcement(db_app, "kommunikator", announcement_id)
    with db_app.store.write() as conn:  # as a worker that delivered both
        conn.execute(jobs.update().values(state=JobState.DONE, attempts=1))
    with pytest.raises(StateError, match="it has started"):
        unschedule(db_app, "kommunikator", announcement_id)


def test_taking_back_waits_for_a_claim_in_flight_and_then_refuses(
    db_app: App, clock: FakeClock
) -> None:
    """The worker's claim and the take-back race: the claim commits first, so it wins whole."""
    announcement_id = approved(db_app)
    send_announcement(db_app, "kommunikator", announcement_id, at=EVENING)
    clock.now = EVENING + timedelta(seconds=1)
    errors: list[BaseException] = []

    def take_back() -> None:
        try:
            unschedule(db_app, "kommunikator", announcement_id)
        except BaseException as exc:
            errors.append(exc)

    with db_app.store.write() as conn:
        claim(
            conn,
            owner="w1",
            wants={BORGHOLM: 1},
            limit=1,
            lease=timedelta(minutes=5),
            now=clock.now,
        )
        other = threading.Thread(target=take_back)
        other.start()
        time.sleep(0.3)  # the take-back is now waiting for the claim's transaction
    other.join(timeout=30)
    assert len(errors) == 1 and isinstance(errors[0], StateError)
    assert delivery_count(db_app) == 2


def test_only_a_dispatching_announcement_has_a_send_to_take_back(db_app: App) -> None:
    announcement_id = approved(db_app)
    with pytest.raises(StateError, match="is approved; it has no scheduled send to take back"):
        unschedule(db_app, "kommunikator", announcement_id)


NOW = datetime(2026, 12, 12, 19, 30, tzinfo=UTC)


def test_a_time_in_the_past_is_refused_with_the_time_now() -> None:
    with pytest.raises(InputError) as caught:
        check_send_time(NOW - timedelta(minutes=90), NOW, ZONE, confirmed=True)
    message = str(caught.value)
    assert "lör 12 dec 19:00 is in the past: it is now lör 12 dec 20:30" in message
    assert "2026-12-13 19:00 for tomorrow" in message


def test_more_than_a_week_ahead_needs_yes_and_more_than_a_year_is_refused() -> None:
    check_send_time(NOW + timedelta(days=7), NOW, ZONE, confirmed=False)
    with pytest.raises(InputError, match=r"8 days ahead.*needs --yes"):
        check_send_time(NOW + timedelta(days=8), NOW, ZONE, confirmed=False)
    check_send_time(NOW + timedelta(days=8), NOW, ZONE, confirmed=True)
    far = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    with pytest.raises(InputError, match="more than a year ahead"):
        check_send_time(far, NOW, ZONE, confirmed=True)
