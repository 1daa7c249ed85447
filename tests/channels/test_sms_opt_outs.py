"""The opt-out list against the sandbox's Twilio, end to end, with the real twilio SDK over HTTP.

Our list wins before the dispatch and after it; Twilio's 21610 (the person replied STOP there)
cancels the delivery and teaches our list the number, so the next send does not even ask.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.app import App
from broadcaster.dispatch import dispatch_revision
from broadcaster.recipients import import_list, opt_out
from broadcaster.reports import announcement_status, audit_log
from broadcaster.sandbox import Sandbox
from broadcaster.store.recipients import opted_out
from broadcaster.store.schema import deliveries, jobs
from broadcaster.worker_runtime import run_worker
from tests.channels.test_sms import LIST, TARGET
from tests.queue.conftest import approved

# Numbers from the range PTS keeps for fiction.
OURS, AT_TWILIO, LATER, KEEN = "+46701740605", "+46701740606", "+46701740607", "+46701740608"


def send(app: App) -> int:
    announcement_id = approved(app, to=(TARGET,))
    dispatch_revision(app, "kommunikator", announcement_id)
    return announcement_id


def drain(app: App) -> None:
    asyncio.run(run_worker(app, until_idle=True))


def asked(sandbox: Sandbox) -> list[str]:
    """The numbers Twilio was asked to text, one entry per create request (refused ones too)."""
    return [r.target for r in sandbox.records.find("twilio", direction="in", method="POST")]


def rows(app: App, announcement_id: int) -> dict[str, tuple[str, str | None, bool]]:
    """Recipient -> (state, cancel reason, has a job)."""
    with app.store.read() as conn:
        queued = set(conn.execute(select(jobs.c.delivery_id)).scalars())
        found = conn.execute(
            select(deliveries).where(deliveries.c.announcement_id == announcement_id)
        ).all()
    return {row.recipient: (row.state, row.cancel_reason, row.id in queued) for row in found}


def test_the_opt_out_list_wins_before_after_dispatch_and_on_twilios_21610(
    sms_app: App, sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = sms_app
    caplog.set_level(logging.DEBUG)
    csv = tmp_path / "boende.csv"
    csv.write_text("nummer\n" + "".join(f"{n}\n" for n in (OURS, AT_TWILIO, LATER, KEEN)))
    import_list(app, "admin", LIST, csv, organisation="borgholm")
    opt_out(app, "admin", OURS)  # on our list before the send
    sandbox.twilio.opt_out(AT_TWILIO)  # replied STOP to Twilio; we do not know yet

    first = send(app)
    assert rows(app, first)[OURS] == ("cancelled", "opted_out", False)
    drain(app)
    assert sorted(asked(sandbox)) == [AT_TWILIO, LATER, KEEN]  # never OURS
    assert sorted(m.to for m in sandbox.twilio.messages()) == [LATER, KEEN]
    status = announcement_status(app, first)
    assert status["state"] == "sent"  # two opted out, nobody failed
    refused = rows(app, first)[AT_TWILIO]
    assert refused == ("cancelled", "opted_out", True)
    with app.store.read() as conn:
        assert opted_out(conn, [OURS, AT_TWILIO, LATER, KEEN]) == {OURS, AT_TWILIO}
    (learned,) = [
        e for e in audit_log(app)["events"] if e["actor"] == "worker" and "number" in e["details"]
    ]
    assert learned["details"]["number"] == "+46 70 *** ** 06"

    # The next send: Twilio's opt-out is ours now, and LATER opts out after the dispatch.
    sandbox.records.clear()
    second = send(app)
    assert rows(app, second)[AT_TWILIO] == ("cancelled", "opted_out", False)
    opt_out(app, "admin", LATER)
    drain(app)
    assert asked(sandbox) == [KEEN]  # neither AT_TWILIO nor LATER was even asked for
    assert rows(app, second)[LATER] == ("cancelled", "opted_out", True)
    assert announcement_status(app, second)["state"] == "sent"
    ours = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("broadcaster.")
        and not record.name.startswith("broadcaster.sandbox")
    ]
    assert any("opted out" in line for line in ours)
    # None of the four numbers, written in any way (+46 70..., 070..., 70-174 06 05).
    digits = [number.removeprefix("+46") for number in (OURS, AT_TWILIO, LATER, KEEN)]
    squeezed = [re.sub(r"[ -]", "", line) for line in ours]
    assert [line for line in squeezed if any(d in line for d in digits)] == []
