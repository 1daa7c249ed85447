"""The four-eyes rule: who may approve or reject which revision, and when it counts.

Every decision binds to the content hash of the revision the approver saw. A decision is a
compare-and-set inside one transaction (the announcement row is locked on PostgreSQL; SQLite
writers are serialised by ``BEGIN IMMEDIATE``), so two approvers deciding at once cannot both be
"the last one", and a second decision by the same person counts once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.config import ApprovalPolicy
from broadcaster.errors import ApprovalError, InputError, StateError
from broadcaster.model import Announcement, AnnouncementState
from broadcaster.store.announcements import get_announcement, set_state
from broadcaster.store.approvals import change_decision, decisions_for, record_decision
from broadcaster.store.audit import record_event
from broadcaster.text import check_text, normalise_newlines

__all__ = ["ApprovalOutcome", "approve", "reject"]

APPROVE = "approve"
REJECT = "reject"


@dataclass(frozen=True, kw_only=True)
class ApprovalOutcome:
    """What a decision led to."""

    announcement: Announcement
    approved_by: list[str]
    required: int
    counted: bool  # False when this person had already decided on this revision

    @property
    def complete(self) -> bool:
        """True when the revision has all the approvals it needs."""
        return self.announcement.state == AnnouncementState.APPROVED


def approve(
    app: App,
    person: str,
    announcement_id: int,
    *,
    expected_hash: str | None = None,
    via: str = "cli",
) -> ApprovalOutcome:
    """Record ``person``'s approval of the current revision; the last one needed approves it."""
    policy = app.config.approval
    _check_approver(policy, person)
    now = app.clock()
    with app.store.write() as conn:
        current = _pending(conn, announcement_id, expected_hash)
        revision = current.revision
        if not policy.allow_self_approval and person in {current.author, revision.author}:
            raise ApprovalError(
                f"{person} wrote announcement {announcement_id} and cannot approve it; "
                "another approver must (allow_self_approval is off)"
            )
        counted = record_decision(
            conn,
            revision_id=revision.id,
            person=person,
            decision=APPROVE,
            reason=None,
            via=via,
            content_hash=revision.content_hash,
            now=now,
        )
        approved_by = _approvers_of(conn, revision.id, revision.content_hash)
        if counted:
            record_event(
                conn,
                actor=person,
                action="approved",
                now=now,
                announcement_id=announcement_id,
                revision=revision.number,
                content_hash=revision.content_hash,
                via=via,
                approvals=len(approved_by),
                required=policy.required,
            )
        if len(approved_by) >= policy.required:
            set_state(conn, announcement_id, current.state, AnnouncementState.APPROVED, now)
        return ApprovalOutcome(
            announcement=get_announcement(conn, announcement_id),
            approved_by=approved_by,
            required=policy.required,
            counted=counted,
        )


def reject(
    app: App,
    person: str,
    announcement_id: int,
    reason: str,
    *,
    expected_hash: str | None = None,
    via: str = "cli",
) -> Announcement:
    """Reject the current revision with a reason; the author then edits or cancels."""
    reason = normalise_newlines(reason)
    if not reason.strip():
        raise InputError("--reason is required: say what must change")
    check_text("reason", reason, lines=True)  # it is shown to the author, and on a Teams card
    _check_approver(app.config.approval, person)
    now = app.clock()
    with app.store.write() as conn:
        current = _pending(conn, announcement_id, expected_hash)
        revision = current.revision
        decision = {"person": person, "decision": REJECT, "reason": reason.strip(), "via": via}
        if not record_decision(
            conn, revision_id=revision.id, content_hash=revision.content_hash, now=now, **decision
        ):
            # This approver had approved earlier and has changed their mind: the rejection wins.
            change_decision(conn, revision_id=revision.id, now=now, **decision)
        set_state(conn, announcement_id, current.state, AnnouncementState.REJECTED, now)
        record_event(
            conn,
            actor=person,
            action="rejected",
            now=now,
            announcement_id=announcement_id,
            revision=revision.number,
            content_hash=revision.content_hash,
            via=via,
            reason=reason.strip(),
        )
        return get_announcement(conn, announcement_id)


def _check_approver(policy: ApprovalPolicy, person: str) -> None:
    if person not in policy.approvers:
        listed = ", ".join(policy.approvers) or "nobody (set approval.approvers)"
        raise ApprovalError(f"{person} is not an approver (approvers: {listed})")


def _pending(conn: Connection, announcement_id: int, expected_hash: str | None) -> Announcement:
    current = get_announcement(conn, announcement_id, lock=True)
    if current.state != AnnouncementState.PENDING_APPROVAL:
        raise StateError(
            f"announcement {announcement_id} is {current.state}; only an announcement "
            "pending approval can be approved or rejected (submit it first)"
        )
    if expected_hash is not None and expected_hash != current.revision.content_hash:
        raise ApprovalError(
            f"announcement {announcement_id} changed since it was shown to you "
            f"(now revision {current.revision.number}); look at it again before deciding"
        )
    return current


def _approvers_of(conn: Connection, revision_id: int, content_hash: str) -> list[str]:
    return [
        d.person
        for d in decisions_for(conn, revision_id)
        if d.decision == APPROVE and d.content_hash == content_hash
    ]
