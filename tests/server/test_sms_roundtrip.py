"""The whole SMS path with `serve`: the worker inside it sends through the sandbox's Twilio, and
the emulator's signed status callbacks come back to it and move the list's counts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from broadcaster.reports import announcement_status
from tests.server.conftest import SMS_LIST_TARGET, ServeFactory, send_to_list

#: Numbers ending 0003 are not delivered by the emulator (Twilio error 30003).
NUMBERS = [f"+4670174{n:04d}" for n in range(10, 21)] + ["+46701740003"]


def test_a_send_to_a_list_is_followed_to_delivered_through_the_callbacks(
    serve_factory: ServeFactory, sandbox: Any, tmp_path: Path
) -> None:
    running = serve_factory(
        public_base_url="self", worker=True, secrets=sandbox.env(), sms_targets=SMS_LIST_TARGET
    )
    app = running.app
    announcement_id = send_to_list(app, tmp_path, NUMBERS)

    counts = finished(app, announcement_id)
    assert counts["recipients"] == len(NUMBERS)
    assert (counts["delivered"], counts["failed"]) == (len(NUMBERS) - 1, 1)
    assert sorted(m.to for m in sandbox.twilio.messages()) == sorted(NUMBERS)  # one text each
    callbacks = sandbox.records.find("twilio", direction="out")
    assert callbacks and all(c.url.startswith(f"{running.url}/twilio/status?d=") for c in callbacks)
    assert {c.status for c in callbacks} <= {200, None}  # None: its answer is on its way


def finished(app: Any, announcement_id: int, timeout: float = 60) -> dict[str, int]:
    """The list's counts once no text is pending or waiting for the handset's report."""
    deadline = time.monotonic() + timeout
    while True:
        counts: dict[str, int] = announcement_status(app, announcement_id)["lists"]["sms-borgholm"]
        if not counts["pending"] and not counts["sent"]:
            return counts
        assert time.monotonic() < deadline, counts
        time.sleep(0.1)
