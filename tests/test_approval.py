"""The four-eyes policy, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from broadcaster.app import App
from broadcaster.approval import approve, reject
from broadcaster.authoring import DraftInput, EditInput, create_draft, edit, submit
from broadcaster.errors import ApprovalError, InputError, StateError
from broadcaster.model import Announcement, AnnouncementState
from broadcaster.store.announcements import get_announcement
from broadcaster.store.approvals import decisions_for
from broadcaster.store.audit import list_events
from tests.conftest import replace_config

AUTHOR = "kommunikator"


def submitted(app: App, author: str = AUTHOR) -> Announcement:
    draft = create_draft(app, author, DraftInput(title="Läget", body="Vi uppdaterar."))
    return submit(app, author, draft.id)


def test_two_approvals_from_two_people_approve(db_app: App) -> None:
    announcement = submitted(db_app)
    first = approve(db_app, "anna.hasselbom", announcement.id)
    assert (first.complete, first.approved_by) == (False, ["anna.hasselbom"])
    second = approve(db_app, "jens.odevall", announcement.id)
    assert second.complete
    assert second.announcement.state == AnnouncementState.APPROVED
    assert second.approved_by == ["anna.hasselbom", "jens.odevall"]


def test_the_same_person_twice_counts_once(db_app: App) -> None:
    announcement = submitted(db_app)
    approve(db_app, "anna.hasselbom", announcement.id)
    again = approve(db_app, "anna.hasselbom", announcement.id)
    assert not again.counted and not again.complete
    assert again.announcement.state == AnnouncementState.PENDING_APPROVAL
    with db_app.store.read() as conn:
        actions = [e.action for e in list_events(conn, announcement.id)]
    assert actions.count("approved") == 1


def test_self_approval_is_refused_even_for_an_approver(db_app: App) -> None:
    announcement = submitted(db_app, author="anna.hasselbom")
    with pytest.raises(
        ApprovalError, match=r"anna\.hasselbom wrote announcement .* cannot approve"
    ):
        approve(db_app, "anna.hasselbom", announcement.id)


def test_an_author_cannot_reject_their_own_update_either(db_app: App) -> None:
    announcement = submitted(db_app, author="anna.hasselbom")
    with pytest.raises(
        ApprovalError,
        match=rf"anna\.hasselbom wrote announcement {announcement.id} and cannot reject it; .*"
        rf"to take it back, `broadcaster cancel {announcement.id}`",
    ):
        reject(db_app, "anna.hasselbom", announcement.id, "Jag ångrar mig")
    with db_app.store.read() as conn:
        assert get_announcement(conn, announcement.id).state == AnnouncementState.PENDING_APPROVAL
        assert [e.action for e in list_events(conn, announcement.id)].count("rejected") == 0
    assert reject(db_app, "jens.odevall", announcement.id, "Fel nummer").state == (
        AnnouncementState.REJECTED
    )


def test_self_approval_allowed_when_the_policy_says_so(db_app: App) -> None:
    policy = db_app.config.approval.model_copy(update={"allow_self_approval": True})
    replace_config(db_app, approval=policy)
    announcement = submitted(db_app, author="anna.hasselbom")
    assert approve(db_app, "anna.hasselbom", announcement.id).counted


def test_only_listed_approvers_decide(db_app: App) -> None:
    announcement = submitted(db_app)
    with pytest.raises(ApprovalError, match="mallory is not an approver"):
        approve(db_app, "mallory", announcement.id)
    with pytest.raises(ApprovalError, match="mallory is not an approver"):
        reject(db_app, "mallory", announcement.id, "nej")


def test_only_a_submitted_announcement_can_be_approved(db_app: App) -> None:
    draft = create_draft(db_app, AUTHOR, DraftInput(title="Läget", body="Text"))
    with pytest.raises(StateError, match="is draft; only an announcement pending approval"):
        approve(db_app, "anna.hasselbom", draft.id)


def test_an_edit_voids_approvals(db_app: App) -> None:
    announcement = submitted(db_app)
    approve(db_app, "anna.hasselbom", announcement.id)
    approve(db_app, "jens.odevall", announcement.id)
    edited = edit(db_app, AUTHOR, announcement.id, EditInput(body="Ny text."))
    assert edited.state == AnnouncementState.DRAFT and edited.revision.number == 2
    submit(db_app, AUTHOR, announcement.id)
    outcome = approve(db_app, "anna.hasselbom", announcement.id)
    assert outcome.approved_by == ["anna.hasselbom"] and not outcome.complete


def test_a_decision_binds_to_the_hash_that_was_shown(db_app: App) -> None:
    announcement = submitted(db_app)
    shown_hash = announcement.revision.content_hash
    edit(db_app, AUTHOR, announcement.id, EditInput(title="Ändrad rubrik"))
    submit(db_app, AUTHOR, announcement.id)
    with pytest.raises(ApprovalError, match="changed since it was shown to you"):
        approve(db_app, "anna.hasselbom", announcement.id, expected_hash=shown_hash)
    with db_app.store.read() as conn:
        current = get_announcement(conn, announcement.id)
    assert approve(
        db_app, "anna.hasselbom", announcement.id, expected_hash=current.revision.content_hash
    ).counted


def test_reject_needs_a_reason_and_stops_the_announcement(db_app: App) -> None:
    announcement = submitted(db_app)
    with pytest.raises(InputError, match="--reason is required"):
        reject(db_app, "jens.odevall", announcement.id, "  ")
    rejected = reject(db_app, "jens.odevall", announcement.id, "Fel telefonnummer")
    assert rejected.state == AnnouncementState.REJECTED
    with pytest.raises(StateError):
        approve(db_app, "anna.hasselbom", announcement.id)
    with db_app.store.read() as conn:
        event = list_events(conn, announcement.id)[-1]
    assert (event.action, event.details["reason"]) == ("rejected", "Fel telefonnummer")


def test_an_approver_who_changes_their_mind_is_recorded_as_rejecting(db_app: App) -> None:
    announcement = submitted(db_app)
    approve(db_app, "jens.odevall", announcement.id)
    reject(db_app, "jens.odevall", announcement.id, "Fel siffror i andra stycket")
    with db_app.store.read() as conn:
        (decision,) = decisions_for(conn, announcement.revision.id)
    assert (decision.person, decision.decision, decision.reason) == (
        "jens.odevall",
        "reject",
        "Fel siffror i andra stycket",
    )


def test_concurrent_last_approvals_approve_exactly_once(db_app: App) -> None:
    """Two approvers click at the same moment; there is one 'approved' transition, not two."""
    policy = db_app.config.approval.model_copy(update={"required": 2})
    assert policy.required == 2
    announcement = submitted(db_app)
    approve(db_app, "ann.willsund", announcement.id)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def click(person: str) -> None:
        barrier.wait()
        try:
            approve(db_app, person, announcement.id)
        except StateError as exc:  # the other click already approved it: a clear refusal
            errors.append(exc)

    threads = [
        threading.Thread(target=click, args=(p,)) for p in ("anna.hasselbom", "jens.odevall")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db_app.store.read() as conn:
        events = list_events(conn, announcement.id)
        state = get_announcement(conn, announcement.id).state
    assert state == AnnouncementState.APPROVED
    assert len(errors) <= 1
    assert [e.action for e in events].count("approved") == 3 - len(errors)
