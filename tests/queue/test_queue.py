"""The queue against a platform over real HTTP: retries, Retry-After, dead letters, limits.

These run the real worker loop with the real clock, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from broadcaster.app import App
from broadcaster.deadletters import list_dead_letters, retry_dead_letters
from broadcaster.dispatch import dispatch_revision
from broadcaster.reports import announcement_status
from broadcaster.store.schema import jobs
from tests.conftest import replace_config
from tests.queue.conftest import approved, fan_out, states, tally, work_until
from tests.queue.recorder import Answer, Recorder

BORGHOLM, MORBYLANGA = "web-borgholm", "web-morbylanga"


def sent_and_dispatched(app: App) -> int:
    announcement_id = approved(app)
    dispatch_revision(app, "kommunikator", announcement_id)
    return announcement_id


def test_three_server_errors_then_success_is_delivered_on_the_fourth_attempt(
    queue_app: App, recorder: Recorder
) -> None:
    recorder.state.scripts[BORGHOLM] += [Answer(500), Answer(502), Answer(503)]
    announcement_id = sent_and_dispatched(queue_app)
    work_until(
        queue_app, lambda: announcement_status(queue_app, announcement_id)["state"] == "sent"
    )
    borgholm = {
        d["target"]: d for d in announcement_status(queue_app, announcement_id)["deliveries"]
    }[BORGHOLM]
    assert borgholm["attempts"] == 4
    assert len(recorder.state.times(BORGHOLM)) == 4
    assert sum(recorder.state.effects.values()) == 2  # one post per target, no more


def test_retry_after_is_not_anticipated(queue_app: App, recorder: Recorder) -> None:
    recorder.state.scripts[BORGHOLM].append(Answer(429, retry_after=2))
    announcement_id = sent_and_dispatched(queue_app)
    work_until(
        queue_app,
        lambda: states(queue_app, announcement_id) == {BORGHOLM: "sent", MORBYLANGA: "sent"},
    )
    first, second = recorder.state.times(BORGHOLM)
    assert second - first >= 2.0
    # Mörbylånga was not held back by Borgholm's rate limit.
    assert recorder.state.times(MORBYLANGA)[0] < second


def test_a_permanent_error_is_dead_at_once_and_can_be_retried_by_hand(
    queue_app: App, recorder: Recorder
) -> None:
    recorder.state.scripts[BORGHOLM].append(Answer(403))
    announcement_id = sent_and_dispatched(queue_app)
    work_until(
        queue_app,
        lambda: announcement_status(queue_app, announcement_id)["state"] == "partially_failed",
    )
    (dead,) = list_dead_letters(queue_app)["deadletters"]
    assert (dead["target"], dead["attempts"]) == (BORGHOLM, 1)
    assert "HTTP 403: refused" in dead["last_error"]
    assert len(recorder.state.times(BORGHOLM)) == 1  # not retried
    assert retry_dead_letters(queue_app, "ann.willsund", [dead["id"]]) == [dead["id"]]
    assert announcement_status(queue_app, announcement_id)["state"] == "dispatching"
    work_until(
        queue_app, lambda: announcement_status(queue_app, announcement_id)["state"] == "sent"
    )
    assert list_dead_letters(queue_app)["deadletters"] == []
    assert recorder.state.effects[next(k for k in recorder.state.effects if BORGHOLM in k)] == 1


def test_a_target_that_is_down_does_not_delay_the_others(
    queue_app: App, recorder: Recorder
) -> None:
    """Borgholm's site hangs for the whole test; all 200 Mörbylånga deliveries still go out."""
    recorder.state.hang.add(BORGHOLM)
    stuck = approved(queue_app, to=(BORGHOLM,))
    dispatch_revision(queue_app, "kommunikator", stuck)
    flowing = fan_out(queue_app, 200, MORBYLANGA)
    work_until(
        queue_app,
        lambda: tally(queue_app, flowing) == {"sent": 200},
        batch_size=10,
        max_in_flight=8,
        shutdown_grace=0.1,
    )
    assert len(recorder.state.times(MORBYLANGA)) == 200
    assert recorder.state.times(BORGHOLM)  # its request was made, and is still hanging ...
    # ... so stopping the worker interrupted it: the delivery is left "sending", which the next
    # worker verifies with the platform before anything is sent again, and its job is released.
    assert states(queue_app, stuck) == {BORGHOLM: "sending"}
    with queue_app.store.read() as conn:
        job = conn.execute(select(jobs).where(jobs.c.target == BORGHOLM)).one()
    assert (job.state, job.lease_owner) == ("queued", None)


def test_rate_limit_spaces_the_sends_across_workers(
    queue_config: object, recorder: Recorder, queue_app: App
) -> None:
    """Two workers in parallel, 10 sends/s to one target: together they keep to it."""
    from broadcaster.app import open_app
    from broadcaster.workspace import load_workspace
    from tests.queue.recorder import recorder_registry

    limited = [t.model_copy(update={"rate_per_second": 10.0}) for t in queue_app.config.targets]
    replace_config(queue_app, targets=limited)
    second = open_app(load_workspace(queue_app.workspace.config_path, {}))
    second.workspace = queue_app.workspace
    second.registry = recorder_registry(recorder.url)
    announcement_id = fan_out(queue_app, 20, BORGHOLM)
    started = time.monotonic()  # the recorder stamps arrivals with the same clock

    def all_sent() -> bool:
        return tally(queue_app, announcement_id) == {"sent": 20}

    other = threading.Thread(target=work_until, args=(second, all_sent))
    other.start()
    work_until(queue_app, all_sent)
    other.join()
    second.close()
    times = sorted(recorder.state.times(BORGHOLM))
    assert len(times) == 20
    # At 10/s the k-th send may not start before k/10 s. A busy machine can only make requests
    # later than their slots, never earlier, so this holds however noisy the machine is.
    early = [k for k, t in enumerate(times) if t - started < k / 10 - 0.005]
    assert early == []
    assert len({pid for *_, pid in recorder.state.requests}) == 1  # one process, two workers


def test_every_job_ends_done_and_no_lease_is_left_behind(
    queue_app: App, recorder: Recorder
) -> None:
    announcement_id = fan_out(queue_app, 300, BORGHOLM)
    work_until(queue_app, lambda: tally(queue_app, announcement_id) == {"sent": 300})
    with queue_app.store.read() as conn:
        rows = conn.execute(select(jobs.c.state, jobs.c.lease_owner)).all()
    assert {row.state for row in rows} == {"done"}
    assert {row.lease_owner for row in rows} == {None}
    assert sorted(recorder.state.effects.values()) == [1] * 300
    assert announcement_status(queue_app, announcement_id)["state"] == "sent"


def test_target_concurrency_caps_parallel_sends(queue_app: App, recorder: Recorder) -> None:
    recorder.state.latency = 0.1
    replace_config(
        queue_app,
        targets=[t.model_copy(update={"concurrency": 2}) for t in queue_app.config.targets],
    )
    announcement_id = fan_out(queue_app, 12, BORGHOLM)
    work_until(queue_app, lambda: tally(queue_app, announcement_id) == {"sent": 12})
    assert recorder.state.most_active == 2


def test_channel_in_flight_caps_all_its_targets_together(
    queue_app: App, recorder: Recorder
) -> None:
    from broadcaster.config import ChannelLimits

    recorder.state.latency = 0.1
    replace_config(queue_app, channels={"website": ChannelLimits(in_flight=1)})
    first = fan_out(queue_app, 4, BORGHOLM)
    second = fan_out(queue_app, 4, MORBYLANGA)
    work_until(
        queue_app,
        lambda: tally(queue_app, first) == {"sent": 4} and tally(queue_app, second) == {"sent": 4},
    )
    assert recorder.state.most_active == 1
