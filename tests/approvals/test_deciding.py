"""Deciding from a card click (the handler ``/api/messages`` calls), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from broadcaster.app import App
from broadcaster.approval_card import action_data, build_card
from broadcaster.approval_card_view import ChannelLines, card_view
from broadcaster.authoring import EditInput, edit, submit
from broadcaster.model import Announcement, AnnouncementState, Severity
from broadcaster.queue.jobs import JobKind
from broadcaster.sandbox.teams import find_execute_action
from broadcaster.server.card_actions import ApprovalCardActions
from broadcaster.store.announcements import get_announcement
from broadcaster.store.approvals import decisions_for
from tests.approvals.conftest import (
    ANNA,
    AUTHOR,
    CLIENT_IP,
    JENS,
    OBJECT_IDS,
    STRANGER_ID,
    caller,
    count_deliveries,
    count_jobs,
    events,
    submitted,
)
from tests.conftest import Cli

AUTHOR_ID = "00000000-0000-0000-0000-0000000000aa"


def data_of(app: App, announcement: Announcement) -> dict[str, Any]:
    """The data the posted card's buttons carry."""
    with app.store.read() as conn:
        return action_data(card_view(app, conn, announcement.id))


def click(
    app: App, sandbox: Any, verb: str, object_id: str | None, data: dict[str, Any]
) -> dict[str, Any]:
    """Click as Teams would (the sandbox builds the invoke), answered by our handler."""
    activity = sandbox.teams.invoke(verb=verb, user_object_id=object_id or "x", data=data)
    if object_id is None:
        del activity["from"]["aadObjectId"]
    return asyncio.run(ApprovalCardActions(app)(activity, caller()))


def notice(response: dict[str, Any]) -> str | None:
    found = [e for e in response["value"]["body"] if e.get("style") == "attention"]
    return str(found[0]["items"][0]["inlines"][0]["text"]) if found else None


def card_texts(response: dict[str, Any]) -> str:
    body = response["value"]["body"]
    return "\n".join(
        run["text"] for element in body if element["type"] == "RichTextBlock"
        for run in element["inlines"]
    )  # fmt: skip


def state_of(app: App, announcement_id: int) -> AnnouncementState:
    with app.store.read() as conn:
        return get_announcement(conn, announcement_id).state


def decisions(app: App, announcement: Announcement) -> list[Any]:
    with app.store.read() as conn:
        return decisions_for(conn, announcement.revision.id)


def test_a_click_from_an_approver_approves(teams_app: App, sandbox: Any) -> None:
    announcement = submitted(teams_app)
    cards_before = count_jobs(teams_app, JobKind.APPROVAL_CARD)
    response = click(
        teams_app, sandbox, "approve", OBJECT_IDS[ANNA], data_of(teams_app, announcement)
    )
    assert response["statusCode"] == 200
    assert response["type"] == "application/vnd.microsoft.card.adaptive"
    assert notice(response) is None
    assert "Waiting: 1 of 2 approvals: anna.hasselbom" in card_texts(response)
    [decision] = decisions(teams_app, announcement)
    assert (decision.person, decision.decision, decision.via) == (ANNA, "approve", "teams")
    proof = {"method": "teams", "aad_object_id": OBJECT_IDS[ANNA], "client_ip": CLIENT_IP}
    assert decision.proof == proof
    [event] = events(teams_app, announcement.id, "approved")
    assert (event.actor, event.details["via"], event.details["proof"]) == (ANNA, "teams", proof)
    # Everyone else sees it when the worker updates the posted card.
    assert count_jobs(teams_app, JobKind.APPROVAL_CARD) >= cards_before


@pytest.mark.parametrize(
    ("who", "why"),
    [
        (STRANGER_ID, f"its Entra object id ({STRANGER_ID}) is not in [approval.identities]"),
        (None, "its Entra object id (none) is not in [approval.identities]"),
        (AUTHOR_ID, f"{AUTHOR} wrote announcement"),
    ],
    ids=["not an approver", "no object id", "the author"],
)
def test_a_click_from_someone_who_may_not_decide_changes_nothing(
    teams_app: App, sandbox: Any, who: str | None, why: str
) -> None:
    announcement = submitted(teams_app)
    jobs_before = count_jobs(teams_app, JobKind.APPROVAL_CARD)
    # Neither decision: an author who wants the update back cancels it.
    for verb, extra in [("approve", {}), ("reject", {"reason": "Nej"})]:
        data = {**data_of(teams_app, announcement), **extra}
        response = click(teams_app, sandbox, verb, who, data)
        assert response["statusCode"] == 200
        refused = notice(response)
        assert refused is not None and why in refused, refused
        assert find_execute_action(response["value"], "approve") is not None  # still open
    assert decisions(teams_app, announcement) == []
    assert state_of(teams_app, announcement.id) == AnnouncementState.PENDING_APPROVAL
    assert count_jobs(teams_app, JobKind.APPROVAL_CARD) == jobs_before
    refusals = events(teams_app, announcement.id, "approval_refused")
    assert len(refusals) == 2
    for event in refusals:
        assert event.details["aad_object_id"] == who
        assert event.details["client_ip"] == CLIENT_IP
        assert why in event.details["reason"]
        assert event.actor == (AUTHOR if who == AUTHOR_ID else "teams")


def test_a_click_on_a_card_of_an_older_revision_is_refused(teams_app: App, sandbox: Any) -> None:
    announcement = submitted(teams_app)
    shown = data_of(teams_app, announcement)
    edit(teams_app, AUTHOR, announcement.id, EditInput(body="Ny text efter provsvar."))
    submit(teams_app, AUTHOR, announcement.id)
    response = click(teams_app, sandbox, "approve", OBJECT_IDS[JENS], shown)
    refused = notice(response)
    assert refused is not None and "changed since it was shown to you" in refused
    # The clicker sees the card they clicked, now saying a newer revision replaces it.
    assert "Edited: revision 2 replaces this one" in card_texts(response)
    assert find_execute_action(response["value"], "approve") is None
    with teams_app.store.read() as conn:
        current = get_announcement(conn, announcement.id)
        assert decisions_for(conn, current.revision.id) == []
    [event] = events(teams_app, announcement.id, "approval_refused")
    assert event.details["aad_object_id"] == OBJECT_IDS[JENS]


def test_a_second_click_by_the_same_person_counts_once(teams_app: App, sandbox: Any) -> None:
    announcement = submitted(teams_app)
    data = data_of(teams_app, announcement)
    for _ in range(3):
        response = click(teams_app, sandbox, "approve", OBJECT_IDS[ANNA], data)
        assert notice(response) is None
    assert [d.person for d in decisions(teams_app, announcement)] == [ANNA]
    assert len(events(teams_app, announcement.id, "approved")) == 1
    assert state_of(teams_app, announcement.id) == AnnouncementState.PENDING_APPROVAL


def test_a_rejection_needs_a_reason_and_then_rejects(teams_app: App, sandbox: Any) -> None:
    announcement = submitted(teams_app)
    data = data_of(teams_app, announcement)
    response = click(teams_app, sandbox, "reject", OBJECT_IDS[JENS], {**data, "reason": "  "})
    assert "a rejection needs a reason" in (notice(response) or "")
    response = click(teams_app, sandbox, "reject", OBJECT_IDS[JENS], {**data, "reason": "x" * 501})
    assert "the reason is 501 characters; say it in at most 500" in (notice(response) or "")
    assert state_of(teams_app, announcement.id) == AnnouncementState.PENDING_APPROVAL
    response = click(
        teams_app, sandbox, "reject", OBJECT_IDS[JENS], {**data, "reason": "Fel **telefon**"}
    )
    assert notice(response) is None
    assert "Rejected by jens.odevall" in card_texts(response)
    assert "Fel **telefon**" in card_texts(response)
    assert "actions" not in response["value"]
    assert state_of(teams_app, announcement.id) == AnnouncementState.REJECTED
    [decision] = decisions(teams_app, announcement)
    assert (decision.decision, decision.reason, decision.via) == (
        "reject",
        "Fel **telefon**",
        "teams",
    )


def test_refresh_shows_the_card_as_it_stands_and_changes_nothing(
    teams_app: App, sandbox: Any
) -> None:
    announcement = submitted(teams_app)
    data = data_of(teams_app, announcement)
    click(teams_app, sandbox, "approve", OBJECT_IDS[ANNA], data)
    before = count_jobs(teams_app, JobKind.APPROVAL_CARD)
    response = click(teams_app, sandbox, "refresh", STRANGER_ID, data)
    assert "Waiting: 1 of 2 approvals: anna.hasselbom" in card_texts(response)
    with teams_app.store.read() as conn:
        now = card_view(teams_app, conn, announcement.id, lines=ChannelLines(teams_app))
    assert response["value"] == build_card(now)
    assert count_jobs(teams_app, JobKind.APPROVAL_CARD) == before
    assert events(teams_app, announcement.id, "approval_refused") == []


@pytest.mark.parametrize(
    ("verb", "data", "status"),
    [
        ("approve", {"announcement": 1, "revision": 1}, 400),
        ("approve", {"broadcaster": "approval", "announcement": "1; DROP", "revision": 1,
                     "hash": "ab"}, 400),
        ("delete", {"broadcaster": "approval", "announcement": 1, "revision": 1, "hash": "a"}, 400),
        ("approve", {"broadcaster": "approval", "announcement": 999, "revision": 1,
                     "hash": "ab" * 32}, 404),
    ],
    ids=["not our card", "bad id", "unknown verb", "no such announcement"],
)  # fmt: skip
def test_a_click_that_is_not_on_one_of_our_cards_is_an_error(
    teams_app: App, sandbox: Any, verb: str, data: dict[str, Any], status: int
) -> None:
    response = click(teams_app, sandbox, verb, OBJECT_IDS[ANNA], data)
    assert response["statusCode"] == status
    assert response["type"] == "application/vnd.microsoft.error"
    assert response["value"]["message"]
    [event] = events(teams_app, None, "approval_refused")
    assert event.details["aad_object_id"] == OBJECT_IDS[ANNA]


def test_one_approval_in_teams_and_one_at_the_cli_approve(
    teams_app: App, sandbox: Any, cli: Cli
) -> None:
    cli.env.update(sandbox.env())
    announcement = submitted(teams_app)
    click(teams_app, sandbox, "approve", OBJECT_IDS[ANNA], data_of(teams_app, announcement))
    result = cli("approve", str(announcement.id), "--as", JENS, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["complete"] is True
    assert state_of(teams_app, announcement.id) == AnnouncementState.APPROVED
    vias = {d.person: d.via for d in decisions(teams_app, announcement)}
    assert vias == {ANNA: "teams", JENS: "cli"}
    # Not a crisis: the policy's default waits for `broadcaster send`.
    assert count_deliveries(teams_app, announcement.id) == 0


def test_twenty_simultaneous_clicks_by_two_approvers_send_exactly_once(
    teams_app: App, sandbox: Any
) -> None:
    announcement = submitted(teams_app, severity=Severity.CRISIS)
    data = data_of(teams_app, announcement)
    handler = ApprovalCardActions(teams_app)
    activities = [
        sandbox.teams.invoke(verb="approve", user_object_id=OBJECT_IDS[who], data=data)
        for who in [ANNA, JENS] * 10
    ]
    start = threading.Barrier(len(activities))
    responses: list[dict[str, Any]] = []

    def one(activity: dict[str, Any]) -> None:
        start.wait()
        responses.append(asyncio.run(handler(activity, caller())))

    threads = [threading.Thread(target=one, args=(a,)) for a in activities]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(responses) == 20 and all(r["statusCode"] == 200 for r in responses)
    assert state_of(teams_app, announcement.id) == AnnouncementState.DISPATCHING
    assert len(events(teams_app, announcement.id, "dispatched")) == 1
    targets = len(announcement.revision.content.targets)
    assert count_deliveries(teams_app, announcement.id) == targets
    assert count_jobs(teams_app, JobKind.DELIVER) == targets
    assert sorted(d.person for d in decisions(teams_app, announcement)) == [ANNA, JENS]
    assert len(events(teams_app, announcement.id, "approved")) == 2
