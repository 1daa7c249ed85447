"""The worker's observer for `serve`'s `/metrics`: told the channel and duration of every
platform call, and unable to change what happens to a delivery when it fails itself."""

from __future__ import annotations

import asyncio

from broadcaster.app import App
from broadcaster.worker_runtime import run_worker
from tests.queue.conftest import fan_out, tally
from tests.queue.recorder import Recorder


def test_the_observer_hears_of_every_platform_call_and_cannot_break_one(
    queue_app: App, recorder: Recorder
) -> None:
    heard: list[tuple[str, float]] = []

    def observer(channel: str, seconds: float) -> None:
        heard.append((channel, seconds))
        raise RuntimeError("a broken observer")  # the deliveries must not notice

    announcement_id = fan_out(queue_app, 4)
    asyncio.run(run_worker(queue_app, until_idle=True, on_send=observer))

    assert tally(queue_app, announcement_id) == {"sent": 4}
    assert len(heard) == 4
    assert all(channel == "website" and seconds >= 0 for channel, seconds in heard)
    assert len(recorder.state.requests) == 4
