"""The opt-out list always wins: at dispatch, at send time, and when the platform says so.

A per-recipient test channel stands in for SMS here (the core's decisions, not Twilio's); the
end-to-end test with the Twilio sandbox lives with the SMS adapter's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Row, select

from broadcaster import recipients
from broadcaster.app import App
from broadcaster.channels.base import Channel, RecipientDirectory, Rendered
from broadcaster.channels.registry import ChannelRegistry
from broadcaster.config import TargetConfig
from broadcaster.deadletters import list_dead_letters
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import RecipientOptedOut
from broadcaster.model import Receipt
from broadcaster.recipients import import_list
from broadcaster.rendering.message import Message
from broadcaster.reports import announcement_status, audit_log
from broadcaster.schedule import unschedule
from broadcaster.store import recipients as recipient_store
from broadcaster.store.schema import deliveries, jobs
from broadcaster.worker_runtime import run_worker
from tests.conftest import Cli, FakeClock, replace_config
from tests.queue.conftest import approved

TARGET = "web-borgholm"
LIST = "boende"
# Numbers from the range PTS keeps for fiction (070-17 406 05 to 070-17 406 99).
FIRST, SECOND, THIRD = "+46701740605", "+46701740606", "+46701740607"


@dataclass
class Phones:
    """What the test channel was asked to send, and how it answers."""

    sent: list[str] = field(default_factory=list)
    #: number -> what the platform answers instead of a receipt
    refuse: dict[str, BaseException] = field(default_factory=dict)
    #: run inside the first send, before it answers
    during_first_send: Callable[[str], Awaitable[None]] | None = None

    def registry(self) -> ChannelRegistry:
        phones = self

        class Texts(Channel):
            """Messages each member of the list, as SMS does."""

            name: ClassVar[str] = "website"

            @classmethod
            def recipients(
                cls, target: TargetConfig, directory: RecipientDirectory
            ) -> Sequence[str]:
                return directory.members(LIST)

            def render(self, message: Message) -> Rendered:
                return Rendered(text=message.content.title)

            async def send(self, message: Message, rendered: Rendered) -> Receipt:
                phones.sent.append(message.recipient)
                if len(phones.sent) == 1 and phones.during_first_send is not None:
                    await phones.during_first_send(message.recipient)
                refusal = phones.refuse.get(message.recipient)
                if refusal is not None:
                    raise refusal
                return Receipt(f"SM{len(phones.sent):032d}")

        registry = ChannelRegistry()
        registry.register_class("website", Texts)
        return registry


@pytest.fixture
def phones(db_app: App, tmp_path: Path) -> Phones:
    """The test channel on ``db_app``, and the list FIRST, SECOND, THIRD imported."""
    found = Phones()
    db_app.registry = found.registry()
    import_list(db_app, "kommunikator", LIST, list_file(tmp_path))
    return found


def list_file(tmp_path: Path) -> Path:
    path = tmp_path / "boende.csv"
    path.write_text("number\n070-174 06 05\n070-174 06 06\n070-174 06 07\n", encoding="utf-8")
    return path


def drain(app: App) -> int:
    return asyncio.run(run_worker(app, until_idle=True))


def send(app: App) -> int:
    announcement_id = approved(app, to=(TARGET,))
    dispatch_revision(app, "kommunikator", announcement_id)
    return announcement_id


def rows(app: App, announcement_id: int) -> dict[str, tuple[str, str | None, bool]]:
    """Recipient -> (state, cancel reason, has a job)."""
    with app.store.read() as conn:
        queued = set(conn.execute(select(jobs.c.delivery_id)).scalars())
        found = conn.execute(
            select(deliveries).where(deliveries.c.announcement_id == announcement_id)
        ).all()
    return {row.recipient: (row.state, row.cancel_reason, row.id in queued) for row in found}


def delivery_to(app: App, announcement_id: int, number: str) -> Row[Any]:
    with app.store.read() as conn:
        return conn.execute(
            select(deliveries).where(
                deliveries.c.announcement_id == announcement_id, deliveries.c.recipient == number
            )
        ).one()


def opted_out(app: App, *numbers: str) -> set[str]:
    with app.store.read() as conn:
        return recipient_store.opted_out(conn, numbers)


def events(app: App, announcement_id: int, action: str) -> list[dict[str, object]]:
    return [
        e["details"] for e in audit_log(app, announcement_id)["events"] if e["action"] == action
    ]


def test_opted_out_before_dispatch_gets_a_cancelled_row_no_job_and_no_send(
    db_app: App, phones: Phones
) -> None:
    recipients.opt_out(db_app, "kommunikator", SECOND)
    announcement_id = send(db_app)
    assert rows(db_app, announcement_id) == {
        FIRST: ("pending", None, True),
        SECOND: ("cancelled", "opted_out", False),
        THIRD: ("pending", None, True),
    }
    assert events(db_app, announcement_id, "dispatched")[0]["opted_out"] == 1
    assert drain(db_app) == 2
    assert sorted(phones.sent) == [FIRST, THIRD]
    status = announcement_status(db_app, announcement_id)
    assert status["state"] == "sent"  # an opt-out is no failure
    assert status["lists"][TARGET] == {
        "revision": 1,
        "recipients": 3,
        "sent": 2,
        "delivered": 0,
        "failed": 0,
        "pending": 0,
        "opted_out": 1,
        "cancelled": 0,
    }
    assert events(db_app, announcement_id, "sent") == [
        {"delivered": 2, "opted_out": 1, "failed": []}
    ]
    assert list_dead_letters(db_app) == {"approval_cards": [], "deadletters": []}


def test_opted_out_after_dispatch_is_never_sent(db_app: App, phones: Phones) -> None:
    announcement_id = send(db_app)
    assert rows(db_app, announcement_id)[SECOND] == ("pending", None, True)
    recipients.opt_out(db_app, "kommunikator", "070-174 06 06")  # replied STOP to another text
    drain(db_app)
    assert sorted(phones.sent) == [FIRST, THIRD]  # the adapter was never asked
    found = rows(db_app, announcement_id)
    assert found[SECOND] == ("cancelled", "opted_out", True)
    with db_app.store.read() as conn:
        assert set(conn.execute(select(jobs.c.state)).scalars()) == {"done"}
    assert announcement_status(db_app, announcement_id)["state"] == "sent"
    assert list_dead_letters(db_app) == {"approval_cards": [], "deadletters": []}


def test_the_last_delivery_opted_out_at_send_time_settles_the_announcement(
    db_app: App, phones: Phones
) -> None:
    """The cancellation at send time has no outcome to write: it settles the announcement."""
    announcement_id = send(db_app)
    for number in (FIRST, SECOND, THIRD):
        recipients.opt_out(db_app, "kommunikator", number)
    drain(db_app)
    assert phones.sent == []
    assert {state for state, _, _ in rows(db_app, announcement_id).values()} == {"cancelled"}
    assert announcement_status(db_app, announcement_id)["state"] == "sent"
    assert events(db_app, announcement_id, "sent")[0]["opted_out"] == 3


def test_opted_out_while_another_of_the_batch_is_sending_skips_only_that_one(
    db_app: App, phones: Phones
) -> None:
    """The three jobs are claimed together; a rate of one a second spaces their sends, and the
    opt-out lands while the first is with the platform: only that person's text is skipped."""
    replace_config(
        db_app,
        targets=[
            t.model_copy(update={"rate_per_second": 1}) if t.id == TARGET else t
            for t in db_app.config.targets
        ],
    )
    skipped: list[str] = []

    async def someone_else_opts_out(sending: str) -> None:
        victim = SECOND if sending != SECOND else THIRD
        skipped.append(victim)
        await asyncio.to_thread(recipients.opt_out, db_app, "kommunikator", victim)

    phones.during_first_send = someone_else_opts_out
    announcement_id = send(db_app)
    drain(db_app)
    assert sorted(phones.sent) == sorted({FIRST, SECOND, THIRD} - set(skipped))
    found = rows(db_app, announcement_id)
    assert found.pop(skipped[0]) == ("cancelled", "opted_out", True)
    assert {state for state, _, _ in found.values()} == {"sent"}
    assert announcement_status(db_app, announcement_id)["state"] == "sent"


def test_the_platform_saying_opted_out_cancels_and_opts_the_number_out(
    db_app: App, phones: Phones, clock: FakeClock
) -> None:
    phones.refuse[SECOND] = RecipientOptedOut(
        "website", f"HTTP 400: error 21610: Attempt to send to unsubscribed recipient {SECOND}"
    )
    announcement_id = send(db_app)
    drain(db_app)
    status = announcement_status(db_app, announcement_id)
    assert status["state"] == "sent"  # not partially_failed: the person said no
    assert (status["lists"][TARGET]["sent"], status["lists"][TARGET]["opted_out"]) == (2, 1)
    second = delivery_to(db_app, announcement_id, SECOND)
    assert (second.state, second.cancel_reason, second.attempts) == ("cancelled", "opted_out", 1)
    assert second.last_error is not None
    assert "21610" in second.last_error and SECOND not in second.last_error
    with db_app.store.read() as conn:
        assert sorted(conn.execute(select(jobs.c.state)).scalars()) == ["done"] * 3
    assert opted_out(db_app, FIRST, SECOND, THIRD) == {SECOND}
    assert list_dead_letters(db_app) == {"approval_cards": [], "deadletters": []}
    # Audited with the number masked: who stopped the texts stays traceable without it.
    (event,) = events(db_app, announcement_id, "opted_out")
    assert event["number"] == "+46 70 *** ** 06"
    assert (event["delivery"], event["already"]) == (second.id, False)
    assert SECOND not in str(audit_log(db_app)["events"])

    # A later dispatch to the same list creates that number's delivery cancelled, with no job.
    clock.advance(60)
    later = send(db_app)
    assert rows(db_app, later)[SECOND] == ("cancelled", "opted_out", False)
    drain(db_app)
    assert phones.sent.count(SECOND) == 1
    assert announcement_status(db_app, later)["state"] == "sent"


def test_everyone_opted_out_settles_the_announcement_at_dispatch(
    db_app: App, phones: Phones
) -> None:
    """No job is created, so nothing would settle it later: the dispatch does, at once."""
    for number in (FIRST, SECOND, THIRD):
        recipients.opt_out(db_app, "kommunikator", number)
    announcement_id = send(db_app)
    assert announcement_status(db_app, announcement_id)["state"] == "sent"
    assert {has_job for _, _, has_job in rows(db_app, announcement_id).values()} == {False}
    assert drain(db_app) == 0
    assert phones.sent == []


def test_a_send_taken_back_takes_its_opted_out_rows_with_it(
    db_app: App, phones: Phones, clock: FakeClock
) -> None:
    """The cancelled rows have no job; taking the send back must remove them too, or the next
    dispatch of the same revision would meet them (one delivery per revision and recipient)."""
    recipients.opt_out(db_app, "kommunikator", SECOND)
    announcement_id = approved(db_app, to=(TARGET,))
    dispatch_revision(db_app, "kommunikator", announcement_id, at=clock() + timedelta(hours=1))
    assert unschedule(db_app, "kommunikator", announcement_id).announcement.state == "approved"
    assert rows(db_app, announcement_id) == {}
    dispatch_revision(db_app, "kommunikator", announcement_id)
    assert rows(db_app, announcement_id)[SECOND] == ("cancelled", "opted_out", False)


def test_status_and_deadletters_at_the_command_line(
    app: App, cli: Cli, tmp_path: Path, clock: FakeClock
) -> None:
    phones = Phones(refuse={THIRD: RecipientOptedOut("website", f"21610 for {THIRD}")})
    app.registry = phones.registry()
    import_list(app, "kommunikator", LIST, list_file(tmp_path))
    recipients.opt_out(app, "kommunikator", SECOND)
    announcement_id = send(app)
    drain(app)
    shown = cli("status", str(announcement_id))
    assert shown.exit_code == 0, shown.stderr
    assert f"#{announcement_id} Läget — sent" in shown.stdout
    lists_table = shown.stdout.split("Recipient lists", 1)[1]
    (row,) = [line.split() for line in lists_table.splitlines() if line.startswith(TARGET)]
    assert row == [TARGET, "3", "1", "0", "0", "0", "2"]  # the list: 1 sent, 2 opted out
    document = cli("status", str(announcement_id), "--json").json()
    assert document["state"] == "sent"
    counts = document["lists"][TARGET]
    assert (counts["sent"], counts["failed"], counts["opted_out"]) == (1, 0, 2)
    failed = cli("status", str(announcement_id), "--target", TARGET, "--failed", "--json")
    assert failed.json()["count"] == 0  # an opt-out is not a failed recipient
    assert cli("deadletters", "--json").json() == {"approval_cards": [], "deadletters": []}
    everything = shown.stdout + str(document)
    assert not any(number in everything for number in (FIRST, SECOND, THIRD))
