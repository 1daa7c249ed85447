"""The four-eyes rule: who may approve or reject which revision, and when it counts.

Every decision binds to the content hash of the revision the approver saw. A decision is a
compare-and-set inside one transaction (the announcement row is locked on PostgreSQL; SQLite
writers are serialised by ``BEGIN IMMEDIATE``), so two approvers deciding at once cannot both be
"the last one", and a second decision by the same person counts once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.approval_card_queue import queue_card
from broadcaster.config import ApprovalPolicy
from broadcaster.errors import ApprovalError, InputError, StateError
from broadcaster.model import Announcement, AnnouncementState
from broadcaster.store.announcements import (
    get_announcement,
    revision_authors,
    revision_hashes,
    set_state,
)
from broadcaster.store.approvals import change_decision, decisions_for, record_decision
from broadcaster.store.audit import record_event
from broadcaster.text import check_text, normalise_newlines

__all__ = [
    "APPROVE",
    "MIN_HASH_PREFIX",
    "REJECT",
    "ApprovalOutcome",
    "Eligibility",
    "approve",
    "eligibility",
    "eligibility_of",
    "reject",
]

APPROVE = "approve"
REJECT = "reject"
#: The shortest content-hash prefix accepted for ``--hash`` (as short as git's abbreviations).
MIN_HASH_PREFIX = 7
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, kw_only=True)
class Eligibility:
    """Who may approve a revision: the approvers who did not write or edit it."""

    required: int
    approvers: list[str]
    #: Everyone who wrote a revision of the announcement (its author first).
    writers: list[str]
    eligible: list[str]

    @property
    def possible(self) -> bool:
        """True when enough eligible approvers exist to approve the revision."""
        return len(self.eligible) >= self.required

    def excluded(self) -> list[str]:
        """The approvers who may not approve because they wrote or edited it."""
        return [a for a in self.approvers if a not in self.eligible]

    def who(self) -> str:
        """``N approval(s) from: a, b`` with the approvers left out and why."""
        names = ", ".join(self.eligible) or "nobody"
        text = f"{self.required} approval(s) from: {names}"
        if self.excluded():
            text += f" (not {', '.join(self.excluded())}: wrote or edited it)"
        return text


def eligibility(policy: ApprovalPolicy, writers: list[str]) -> Eligibility:
    """Apply the four-eyes rule to one announcement's writers."""
    barred = set() if policy.allow_self_approval else set(writers)
    return Eligibility(
        required=policy.required,
        approvers=list(policy.approvers),
        writers=list(writers),
        eligible=[a for a in policy.approvers if a not in barred],
    )


def eligibility_of(conn: Connection, policy: ApprovalPolicy, announcement_id: int) -> Eligibility:
    """:func:`eligibility` for a stored announcement (every revision's writer counts)."""
    return eligibility(policy, revision_authors(conn, announcement_id))


@dataclass(frozen=True, kw_only=True)
class ApprovalOutcome:
    """What a decision led to."""

    announcement: Announcement
    approved_by: list[str]
    required: int
    counted: bool  # False when this person had already decided on this revision
    #: True when this approval completed the policy and the fan-out was enqueued with it
    #: (``[approval] send_on_approval``).
    sending: bool = False
    #: Why a completed approval did not send although the policy says it should (preview
    #: errors); None otherwise.
    not_sent: str | None = None

    @property
    def complete(self) -> bool:
        """True when the revision has all the approvals it needs (and maybe is being sent)."""
        return self.sending or self.announcement.state == AnnouncementState.APPROVED


def approve(
    app: App,
    person: str,
    announcement_id: int,
    *,
    expected_hash: str | None = None,
    via: str = "cli",
    proof: Mapping[str, Any] | None = None,
) -> ApprovalOutcome:
    """Record ``person``'s approval of the current revision; the last one needed approves it.

    ``proof`` says how ``person`` was shown to be who they are (kept with the decision and in
    the audit log).
    """
    policy = app.config.approval
    _check_approver(policy, person)
    now = app.clock()
    with app.store.write() as conn:
        current = _pending(conn, announcement_id, expected_hash)
        revision = current.revision
        _check_eligible(conn, policy, current, person, "approve")
        counted = record_decision(
            conn,
            revision_id=revision.id,
            person=person,
            decision=APPROVE,
            reason=None,
            via=via,
            content_hash=revision.content_hash,
            now=now,
            proof=proof,
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
                **({"proof": dict(proof)} if proof is not None else {}),
            )
        sending, not_sent = False, None
        if len(approved_by) >= policy.required:
            set_state(conn, announcement_id, current.state, AnnouncementState.APPROVED, now)
            if policy.sends_on_approval(current.revision.content.severity):
                not_sent = _send_now(app, conn, announcement_id, person, via, now)
                sending = not_sent is None
        if counted:
            queue_card(conn, app.config, announcement_id, now)
        return ApprovalOutcome(
            announcement=get_announcement(conn, announcement_id),
            approved_by=approved_by,
            required=policy.required,
            counted=counted,
            sending=sending,
            not_sent=not_sent,
        )


def _send_now(
    app: App, conn: Connection, announcement_id: int, person: str, via: str, now: datetime
) -> str | None:
    """Enqueue the fan-out of the just-approved revision in the approval's own transaction.

    Two approvers completing at once cannot both get here: the second one's transaction finds
    the announcement no longer pending. Returns why it was not sent (the preview has errors:
    the approval stands and a person sends once they are fixed), or None.
    """
    # Imported here: dispatch reaches preview and the adapters, which approval alone does not need.
    from broadcaster.dispatch import dispatch_in
    from broadcaster.preview import preview_announcement

    approved = get_announcement(conn, announcement_id)
    problems = preview_announcement(app, approved).problems()
    if problems:
        reason = "the preview has errors: " + "; ".join(problems)
        record_event(
            conn,
            actor=person,
            action="not_sent",
            now=now,
            announcement_id=announcement_id,
            revision=approved.revision.number,
            reason=reason,
        )
        return reason
    dispatch_in(app, conn, approved, person, run_at=now, now=now, on_approval=True, via=via)
    return None


def reject(
    app: App,
    person: str,
    announcement_id: int,
    reason: str,
    *,
    expected_hash: str | None = None,
    via: str = "cli",
    proof: Mapping[str, Any] | None = None,
) -> Announcement:
    """Reject the current revision with a reason; the author then edits or cancels."""
    reason = normalise_newlines(reason)
    if not reason.strip():
        raise InputError("--reason is required: say what must change")
    check_text("reason", reason, lines=True)  # it is shown to the author, and on a Teams card
    policy = app.config.approval
    _check_approver(policy, person)
    now = app.clock()
    with app.store.write() as conn:
        current = _pending(conn, announcement_id, expected_hash)
        _check_eligible(conn, policy, current, person, "reject")
        revision = current.revision
        decision = {"person": person, "decision": REJECT, "reason": reason.strip(), "via": via}
        if not record_decision(
            conn,
            revision_id=revision.id,
            content_hash=revision.content_hash,
            now=now,
            proof=proof,
            **decision,
        ):
            # This approver had approved earlier and has changed their mind: the rejection wins.
            change_decision(conn, revision_id=revision.id, now=now, proof=proof, **decision)
        set_state(conn, announcement_id, current.state, AnnouncementState.REJECTED, now)
        queue_card(conn, app.config, announcement_id, now)
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
            **({"proof": dict(proof)} if proof is not None else {}),
        )
        return get_announcement(conn, announcement_id)


def _check_approver(policy: ApprovalPolicy, person: str) -> None:
    if person not in policy.approvers:
        listed = ", ".join(policy.approvers) or "nobody (set approval.approvers)"
        raise ApprovalError(f"{person} is not an approver (approvers: {listed})")


def _check_eligible(
    conn: Connection, policy: ApprovalPolicy, current: Announcement, person: str, verb: str
) -> None:
    """Refuse a decision by someone who wrote or edited the text: four eyes both ways (an
    author who wants an update back cancels or edits it; a rejection is a reviewer's word)."""
    allowed = eligibility_of(conn, policy, current.id)
    if person in allowed.eligible:
        return
    did = "wrote" if person == current.author else "edited"
    instead = "" if verb == "approve" else f"; to take it back, `broadcaster cancel {current.id}`"
    raise ApprovalError(
        f"{person} {did} announcement {current.id} and cannot {verb} it; "
        f"it needs {allowed.who()} (allow_self_approval is off){instead}"
    )


def _pending(conn: Connection, announcement_id: int, expected_hash: str | None) -> Announcement:
    current = get_announcement(conn, announcement_id, lock=True)
    if current.state != AnnouncementState.PENDING_APPROVAL:
        raise StateError(
            f"announcement {announcement_id} is {current.state}; only an announcement "
            "pending approval can be approved or rejected (submit it first)"
        )
    if expected_hash is not None:
        _check_hash(expected_hash, current, revision_hashes(conn, announcement_id))
    return current


def _check_hash(given: str, current: Announcement, hashes: dict[int, str]) -> None:
    """Refuse unless ``given`` is the current revision's hash or a unique prefix of it.

    Like git, a prefix of at least :data:`MIN_HASH_PREFIX` characters is enough when it names
    one revision of this announcement. A prefix of an older revision means the text changed
    after the approver looked: refused (exit 1). A prefix that is malformed, names nothing or
    names several revisions is bad input (exit 2). Every message shows the full current hash.
    """
    revision = current.revision
    now = f"revision {revision.number} has hash {revision.content_hash}"
    prefix = given.strip().lower()
    if len(prefix) < MIN_HASH_PREFIX or len(prefix) > 64 or not set(prefix) <= _HEX:
        raise InputError(
            f"--hash {given!r}: give the content hash or its first {MIN_HASH_PREFIX} or more "
            f"hexadecimal characters; {now}"
        )
    # A revision can repeat an earlier text (an edit undone): the same hash is one match.
    found = sorted({full for full in hashes.values() if full.startswith(prefix)})
    if not found:
        raise InputError(
            f"--hash {given}: no revision of announcement {current.id} has such a hash; {now}"
        )
    if len(found) > 1:
        raise InputError(
            f"--hash {given} is ambiguous: it starts {len(found)} hashes of announcement "
            f"{current.id} ({', '.join(found)}); give more characters. {now.capitalize()}"
        )
    if found[0] != revision.content_hash:
        seen = max(number for number, full in hashes.items() if full == found[0])
        raise ApprovalError(
            f"announcement {current.id} changed since it was shown to you: --hash {given} is "
            f"revision {seen}, but {now}; look at it again "
            f"(`broadcaster preview {current.id}`) before deciding"
        )


def _approvers_of(conn: Connection, revision_id: int, content_hash: str) -> list[str]:
    return [
        d.person
        for d in decisions_for(conn, revision_id)
        if d.decision == APPROVE and d.content_hash == content_hash
    ]
