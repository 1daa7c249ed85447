"""What an approver signed: one revision exactly as stored, its hash, and every decision on it.

``show`` and ``preview`` print this so an approver can check, after the fact, that the text that
went out is the text they approved: the stored content is hashed again here and compared with
the hash the decisions were bound to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from broadcaster.approval import APPROVE, REJECT
from broadcaster.model import Announcement, AnnouncementState, Revision
from broadcaster.store.announcements import get_revision
from broadcaster.store.approvals import Decision, decisions_for

__all__ = ["ApprovalRecord", "approval_record"]

_S = AnnouncementState
#: States in which the current revision is one that was approved.
_APPROVED_STATES = (_S.APPROVED, _S.DISPATCHING, _S.SENT, _S.PARTIALLY_FAILED)


@dataclass(frozen=True, kw_only=True)
class ApprovalRecord:
    """One revision of an announcement and the decisions bound to it."""

    announcement: Announcement
    revision: Revision
    decisions: list[Decision]
    required: int

    @property
    def is_current(self) -> bool:
        """True for the announcement's current revision."""
        return self.revision.number == self.announcement.revision.number

    @property
    def approved(self) -> bool:
        """True when this revision is the one that was approved (and maybe sent)."""
        return self.is_current and self.announcement.state in _APPROVED_STATES

    @property
    def approvals(self) -> list[Decision]:
        """Approvals bound to this revision's hash, oldest first."""
        return [
            d
            for d in self.decisions
            if d.decision == APPROVE and d.content_hash == self.revision.content_hash
        ]

    @property
    def rejections(self) -> list[Decision]:
        """Rejections of this revision."""
        return [d for d in self.decisions if d.decision == REJECT]

    @property
    def hash_verified(self) -> bool:
        """True when the stored content still hashes to the stored (and signed) hash."""
        return self.revision.content.content_hash() == self.revision.content_hash

    def summary_json(self) -> dict[str, Any]:
        """Revision, hash, hash check and approvals (``preview --json`` carries this)."""
        return {
            "revision": self.revision.number,
            "content_hash": self.revision.content_hash,
            "hash_verified": self.hash_verified,
            "approved": self.approved,
            "required": self.required,
            "approved_by": [_decision_json(d) for d in self.approvals],
        }

    def to_json(self) -> dict[str, Any]:
        """The revision exactly as stored, its hash check and every decision on it."""
        revision = self.revision
        content = revision.content
        return {
            "id": self.announcement.id,
            "state": str(self.announcement.state),
            **self.summary_json(),
            "current_revision": self.announcement.revision.number,
            "written_by": revision.author,
            "written_at": revision.created_at.isoformat(timespec="seconds"),
            "content": {
                "title": content.title,
                "body": content.body,
                "severity": str(content.severity),
                "language": content.language,
                "link": content.link,
                "overrides": dict(content.overrides),
                "targets": list(content.targets),
                "kind": str(content.kind),
            },
            "decisions": [_decision_json(d) for d in self.decisions],
        }


def approval_record(
    conn: Connection, announcement: Announcement, required: int, number: int | None = None
) -> ApprovalRecord:
    """The record of revision ``number`` (default: the current one) of ``announcement``."""
    revision = (
        announcement.revision
        if number is None or number == announcement.revision.number
        else get_revision(conn, announcement.id, number)
    )
    return ApprovalRecord(
        announcement=announcement,
        revision=revision,
        decisions=decisions_for(conn, revision.id),
        required=required,
    )


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "person": decision.person,
        "decision": decision.decision,
        "reason": decision.reason,
        "via": decision.via,
        "decided_at": decision.decided_at.isoformat(timespec="seconds"),
        "content_hash": decision.content_hash,
        "proof": decision.proof,
    }
