"""Why an announcement is where it is: the rejection, cancellation or voiding edit behind it.

An officer who finds an announcement ``rejected`` needs the approver's reason, an approver who
finds one back in ``draft`` needs to know that the approvals given were voided by an edit. The
audit log holds those facts; this module picks, per announcement, the one that explains its
current state, for ``status``, ``list`` and their ``--json``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from broadcaster.model import Announcement, AnnouncementState
from broadcaster.store.audit import AuditEvent, list_events

__all__ = ["StateNote", "state_notes"]

_S = AnnouncementState
_ACTIONS = ("rejected", "cancelled", "edited")
#: States an edit's voided approvals still explain (until the new revision is decided on).
_AFTER_EDIT = (_S.DRAFT, _S.PENDING_APPROVAL)


@dataclass(frozen=True, kw_only=True)
class StateNote:
    """One reason, with who gave it and when."""

    #: ``rejected``, ``cancelled`` or ``approvals_voided``.
    kind: str
    by: str
    at: datetime
    revision: int | None
    reason: str | None = None
    #: For ``approvals_voided``: whose approvals of the previous revision no longer count.
    voided_approvals: list[str] = field(default_factory=list)

    def text(self) -> str:
        """One sentence for people, e.g. ``rejected by jens.odevall: Fel nummer``."""
        if self.kind == "approvals_voided":
            whose = f" ({', '.join(self.voided_approvals)})" if self.voided_approvals else ""
            return (
                f"approvals were voided by this edit: {self.by} made revision {self.revision}; "
                f"the approvals of revision {(self.revision or 1) - 1}{whose} no longer count"
            )
        reason = f": {self.reason}" if self.reason else " (no reason given)"
        return f"{self.kind} by {self.by}{reason}"

    def short(self, width: int = 70) -> str:
        """At most ``width`` characters, for a table cell."""
        if self.kind == "approvals_voided":
            text = "approvals voided by an edit"
        else:
            text = f"{self.kind} by {self.by}" + (f": {self.reason}" if self.reason else "")
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "by", "at", "revision", "reason", "voided_approvals", "text", "short"}``."""
        return {
            "kind": self.kind,
            "by": self.by,
            "at": self.at.isoformat(timespec="seconds"),
            "revision": self.revision,
            "reason": self.reason,
            "voided_approvals": list(self.voided_approvals),
            "text": self.text(),
            "short": self.short(),
        }


def state_notes(conn: Connection, announcements: Collection[Announcement]) -> dict[int, StateNote]:
    """The note that explains each announcement's current state, for those that have one."""
    wanted = {a.id: a for a in announcements}
    if not wanted:
        return {}
    only = next(iter(wanted)) if len(wanted) == 1 else None
    latest: dict[int, StateNote] = {}
    for event in list_events(conn, only, actions=_ACTIONS):
        announcement = wanted.get(event.announcement_id or 0)
        if announcement is None:
            continue
        note = _note(event, announcement)
        if note is not None:
            latest[announcement.id] = note  # events come oldest first: the last one wins
    return latest


def _note(event: AuditEvent, announcement: Announcement) -> StateNote | None:
    state = announcement.state
    current = announcement.revision.number
    details = event.details
    if event.action == "rejected" and state == _S.REJECTED and event.revision == current:
        kind = "rejected"
    elif event.action == "cancelled" and state == _S.CANCELLED:
        kind = "cancelled"
    elif (
        event.action == "edited"
        and state in _AFTER_EDIT
        and event.revision == current
        and details.get("approvals_voided")
    ):
        kind = "approvals_voided"
    else:
        return None
    return StateNote(
        kind=kind,
        by=event.actor,
        at=event.at,
        revision=event.revision,
        reason=details.get("reason"),
        voided_approvals=list(details.get("voided_approvals", [])),
    )
