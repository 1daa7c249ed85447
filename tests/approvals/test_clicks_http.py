"""Clicks over real HTTP: the sandbox acts as Teams against `broadcaster serve` (with its worker),
which posts the cards through the sandbox's Bot Connector and updates them after decisions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from broadcaster.app import App
from broadcaster.authoring import EditInput, edit, submit
from broadcaster.model import Announcement, AnnouncementState, Severity
from broadcaster.queue.jobs import JobKind
from broadcaster.sandbox.teams import find_execute_action
from broadcaster.server.runner import listen
from broadcaster.store.announcements import get_announcement
from broadcaster.store.approvals import decisions_for
from tests.approvals.conftest import (
    ANNA,
    AUTHOR,
    JENS,
    OBJECT_IDS,
    STRANGER_ID,
    count_deliveries,
    count_jobs,
    events,
    open_workspace,
    submitted,
    write_config,
)
from tests.approvals.test_card_jobs import replies, shown, threads
from tests.server.conftest import Running, start_serve


@pytest.fixture
def serving(workspace_dir: Path, database_url: str, sandbox: Any) -> Iterator[Running]:
    """`serve` with its worker, for a workspace whose approval cards go to the sandbox."""
    app = open_workspace(write_config(workspace_dir, database_url), sandbox)
    running = start_serve(app, listen("127.0.0.1", 0), worker=True)
    yield running
    running.stop()
    app.close()


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "it did not happen in time"
        time.sleep(0.05)


def submitted_and_posted(app: App, sandbox: Any, **draft: Any) -> tuple[Announcement, Any]:
    """An announcement submitted for approval, and its card once the worker has posted it."""
    announcement = submitted(app, **draft)
    wait_for(lambda: bool(threads(sandbox)))
    [posted] = threads(sandbox)
    return announcement, posted


def bot_url(running: Running) -> str:
    return f"{running.url}/api/messages"


def state(app: App, announcement_id: int) -> AnnouncementState:
    with app.store.read() as conn:
        return get_announcement(conn, announcement_id).state


def card_of_answer(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["statusCode"] == 200
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    card: dict[str, Any] = body["value"]
    return card


def refusal(card: dict[str, Any]) -> str | None:
    found = [e for e in card["body"] if e.get("style") == "attention"]
    return str(found[0]["items"][0]["inlines"][0]["text"]) if found else None


def test_clicks_in_teams_approve_and_every_view_follows(serving: Running, sandbox: Any) -> None:
    app = serving.app
    announcement, posted = submitted_and_posted(app, sandbox, severity=Severity.CRISIS)

    # A stranger's click: refused, with a card that says why; nothing changes.
    answer = sandbox.teams.click(bot_url(serving), verb="approve", user_object_id=STRANGER_ID,
                                 activity_id=posted.id)  # fmt: skip
    assert "is not in [approval.identities]" in (refusal(card_of_answer(answer)) or "")
    [refused] = events(app, announcement.id, "approval_refused")
    assert refused.details["client_ip"] == "127.0.0.1"
    assert refused.details["aad_object_id"] == STRANGER_ID

    # The author's click: refused.
    answer = sandbox.teams.click(bot_url(serving), verb="approve",
                                 user_object_id="00000000-0000-0000-0000-0000000000aa",
                                 activity_id=posted.id)  # fmt: skip
    assert f"{AUTHOR} wrote announcement" in (refusal(card_of_answer(answer)) or "")

    # An approver's click: approved; the clicker sees it at once, everyone after the PUT.
    answer = sandbox.teams.click(bot_url(serving), verb="approve", user_object_id=OBJECT_IDS[ANNA],
                                 activity_id=posted.id)  # fmt: skip
    card = card_of_answer(answer)
    assert refusal(card) is None
    wait_for(lambda: "1 of 2 approvals: anna.hasselbom" in shown(threads(sandbox)[0]))
    with app.store.read() as conn:
        [decision] = decisions_for(conn, announcement.revision.id)
    assert decision.proof == {
        "method": "teams",
        "aad_object_id": OBJECT_IDS[ANNA],
        "client_ip": "127.0.0.1",
    }

    # The second approver's click sends it (a crisis); the author is told in the thread.
    answer = sandbox.teams.click(bot_url(serving), verb="approve", user_object_id=OBJECT_IDS[JENS],
                                 activity_id=posted.id)  # fmt: skip
    assert "actions" not in card_of_answer(answer)
    wait_for(lambda: state(app, announcement.id) == AnnouncementState.SENT)
    wait_for(lambda: bool(replies(sandbox, posted.id)))
    assert (
        "is approved by anna.hasselbom, jens.odevall and being sent"
        in replies(sandbox, posted.id)[0]
    )
    assert len(events(app, announcement.id, "dispatched")) == 1
    wait_for(lambda: "Approved (2 of 2)" in shown(threads(sandbox)[0]))
    wait_for(lambda: "Sent." in shown(threads(sandbox)[0]))
    puts = sandbox.records.find("connector", method="PUT", direction="in")
    assert puts and all(p.status == 200 for p in puts)


def test_a_click_on_a_card_of_an_older_revision_is_refused_over_http(
    serving: Running, sandbox: Any
) -> None:
    app = serving.app
    announcement, posted = submitted_and_posted(app, sandbox)
    stale = sandbox.teams.invoke(verb="approve", user_object_id=OBJECT_IDS[JENS],
                                 activity_id=posted.id)  # fmt: skip
    edit(app, AUTHOR, announcement.id, EditInput(body="Rättad text."))
    submit(app, AUTHOR, announcement.id)
    card = card_of_answer(sandbox.teams.send(bot_url(serving), stale))
    assert "changed since it was shown to you" in (refusal(card) or "")
    with app.store.read() as conn:
        current = get_announcement(conn, announcement.id)
        assert decisions_for(conn, current.revision.id) == []
    wait_for(lambda: len(threads(sandbox)) == 2)  # the new revision's card


def test_twenty_simultaneous_clicks_by_two_approvers_send_once_over_http(
    serving: Running, sandbox: Any
) -> None:
    app = serving.app
    announcement, posted = submitted_and_posted(app, sandbox, severity=Severity.CRISIS)
    clicks = [
        sandbox.teams.invoke(verb="approve", user_object_id=OBJECT_IDS[who], activity_id=posted.id)
        for who in [ANNA, JENS] * 10
    ]
    start = threading.Barrier(len(clicks))
    answers: list[httpx.Response] = []

    def one(activity: dict[str, Any]) -> None:
        start.wait()
        answers.append(sandbox.teams.send(bot_url(serving), activity, timeout_s=60))

    senders = [threading.Thread(target=one, args=(c,)) for c in clicks]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert sorted(a.status_code for a in answers) == [200] * 20
    refused = [refusal(card_of_answer(a)) for a in answers]
    # Each approver counts once; every click after the sending one is told it is sent already.
    assert all(r is None or "dispatching" in r or "sent" in r for r in refused), refused
    assert len(events(app, announcement.id, "dispatched")) == 1
    targets = len(announcement.revision.content.targets)
    assert count_deliveries(app, announcement.id) == targets
    assert count_jobs(app, JobKind.DELIVER) == targets
    with app.store.read() as conn:
        people = sorted(d.person for d in decisions_for(conn, announcement.revision.id))
    assert people == [ANNA, JENS]
    wait_for(lambda: state(app, announcement.id) == AnnouncementState.SENT)


def fallback_click(sandbox: Any, posted: str, verb: str, who: str, **inputs: str) -> dict[str, Any]:
    """The message activity a Teams client without Universal Actions sends for a button."""
    card = sandbox.connector.activity(posted).card()
    submit_action = find_execute_action(card, verb)["fallback"]
    assert submit_action["type"] == "Action.Submit"
    activity = sandbox.teams.invoke(verb=verb, user_object_id=OBJECT_IDS[who], activity_id=posted)
    del activity["name"]
    return {**activity, "type": "message", "value": {**submit_action["data"], **inputs}}


def test_older_clients_decide_through_the_submit_fallback(serving: Running, sandbox: Any) -> None:
    app = serving.app
    announcement, posted = submitted_and_posted(app, sandbox)
    answer = sandbox.teams.send(
        bot_url(serving), fallback_click(sandbox, posted.id, "approve", ANNA)
    )
    assert (answer.status_code, answer.content) == (200, b"")
    with app.store.read() as conn:
        [decision] = decisions_for(conn, announcement.revision.id)
    assert (decision.person, decision.decision, decision.via) == (ANNA, "approve", "teams")
    wait_for(lambda: "1 of 2 approvals: anna.hasselbom" in shown(threads(sandbox)[0]))
    # A rejection carries its reason from the card's input, as the invoke does.
    rejection = fallback_click(sandbox, posted.id, "reject", JENS, reason="Fel telefonnummer.")
    assert sandbox.teams.send(bot_url(serving), rejection).status_code == 200
    assert state(app, announcement.id) == AnnouncementState.REJECTED


def test_a_submit_fallback_click_by_a_stranger_changes_nothing(
    serving: Running, sandbox: Any
) -> None:
    app = serving.app
    announcement, posted = submitted_and_posted(app, sandbox)
    click = fallback_click(sandbox, posted.id, "approve", ANNA)
    click["from"]["aadObjectId"] = STRANGER_ID
    assert sandbox.teams.send(bot_url(serving), click).status_code == 200
    with app.store.read() as conn:
        assert decisions_for(conn, announcement.revision.id) == []
    [refused] = events(app, announcement.id, "approval_refused")
    assert refused.details["aad_object_id"] == STRANGER_ID
