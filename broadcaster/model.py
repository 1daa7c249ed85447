"""The announcement model: content, revisions, content hashes and the lifecycle state machine.

An announcement is edited by adding revisions; each revision's content has a SHA-256 hash over a
canonical JSON form, and approvals bind to that hash, so an approval can never be carried over to
text the approver did not see.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from broadcaster.errors import StateError

__all__ = [
    "AnnouncementState",
    "CancelReason",
    "ChannelName",
    "Content",
    "DeliveryState",
    "Receipt",
    "RevisionKind",
    "Severity",
    "check_transition",
]


class ChannelName(StrEnum):
    """The channels broadcaster can post to; config, registry and store all use these names."""

    FACEBOOK = "facebook"
    SMS = "sms"
    TEAMS = "teams"
    TELEGRAM = "telegram"
    WEBSITE = "website"


class Severity(StrEnum):
    """How serious an announcement is; templates and channels style it accordingly."""

    INFO = "info"
    IMPORTANT = "important"
    CRISIS = "crisis"

    @property
    def priority(self) -> int:
        """Queue priority: lower runs first, so crisis news overtakes routine updates."""
        return _PRIORITY[self]


_PRIORITY = {Severity.CRISIS: 0, Severity.IMPORTANT: 1, Severity.INFO: 2}


class RevisionKind(StrEnum):
    """What a revision is to the ones before it (drives CAP ``msgType`` and channel actions)."""

    ORIGINAL = "original"
    CORRECTION = "correction"
    RETRACTION = "retraction"


class AnnouncementState(StrEnum):
    """The lifecycle of an announcement (DESIGN §2)."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    DISPATCHING = "dispatching"
    SENT = "sent"
    PARTIALLY_FAILED = "partially_failed"
    CANCELLED = "cancelled"


class DeliveryState(StrEnum):
    """The state of one delivery (one target, or one recipient of an SMS list)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    UNKNOWN = "unknown"
    RETRYING = "retrying"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True when the queue will not touch the delivery again on its own."""
        return self in (DeliveryState.SENT, DeliveryState.DEAD, DeliveryState.CANCELLED)


class CancelReason(StrEnum):
    """Why a delivery was cancelled without being sent (``deliveries.cancel_reason``)."""

    #: The recipient is on the opt-out list: at dispatch, by the time its turn came, or as the
    #: platform answered (Twilio 21610). Not a failure: the announcement can still be ``sent``.
    OPTED_OUT = "opted_out"


_S = AnnouncementState
# Editing (a new revision) goes back to draft from any state before dispatch; corrections and
# retractions of what was posted start from sent/partially_failed, also as a new draft revision.
TRANSITIONS: dict[AnnouncementState, frozenset[AnnouncementState]] = {
    _S.DRAFT: frozenset({_S.DRAFT, _S.PENDING_APPROVAL, _S.CANCELLED}),
    _S.PENDING_APPROVAL: frozenset({_S.DRAFT, _S.APPROVED, _S.REJECTED, _S.CANCELLED}),
    _S.APPROVED: frozenset({_S.DRAFT, _S.DISPATCHING, _S.CANCELLED}),
    _S.REJECTED: frozenset({_S.DRAFT, _S.CANCELLED}),
    _S.DISPATCHING: frozenset({_S.SENT, _S.PARTIALLY_FAILED}),
    _S.SENT: frozenset({_S.DRAFT}),
    _S.PARTIALLY_FAILED: frozenset({_S.DRAFT, _S.DISPATCHING}),
    _S.CANCELLED: frozenset(),
}

_VERBS = {
    _S.DRAFT: "edit",
    _S.PENDING_APPROVAL: "submit",
    _S.APPROVED: "approve",
    _S.REJECTED: "reject",
    _S.DISPATCHING: "send",
    _S.SENT: "mark as sent",
    _S.PARTIALLY_FAILED: "mark as partially failed",
    _S.CANCELLED: "cancel",
}


#: States only the worker moves an announcement to (a person cannot "mark as sent").
_REACHED_BY_WORKER = frozenset({_S.SENT, _S.PARTIALLY_FAILED})
#: What to do instead, for the mistakes people make (sending what is already on its way).
_INSTEAD: dict[tuple[AnnouncementState, AnnouncementState], str] = {
    (_S.DISPATCHING, _S.DISPATCHING): "it is already being sent (perhaps by its last approval: "
    "[approval] send_on_approval); follow it with `broadcaster status`",
    (_S.SENT, _S.DISPATCHING): "it was sent already; to change what went out, edit it and send "
    "the correction",
}


def check_transition(current: AnnouncementState, wanted: AnnouncementState) -> None:
    """Raise :class:`StateError` unless the lifecycle allows ``current -> wanted``."""
    if wanted in TRANSITIONS[current]:
        return
    instead = _INSTEAD.get((current, wanted))
    if instead is None:
        allowed = sorted(
            _VERBS[state] for state in TRANSITIONS[current] - _REACHED_BY_WORKER if state != current
        )
        instead = f"from {current} you can {', '.join(allowed)}" if allowed else ""
    hint = f"; {instead}" if instead else ""
    raise StateError(f"cannot {_VERBS[wanted]} an announcement that is {current}{hint}")


@dataclass(frozen=True)
class Receipt:
    """Proof of delivery: the platform's id for what was posted (post id, SID, path, ...).

    ``data`` holds whatever else editing or deleting the post later needs (a Telegram chat id,
    a Teams service URL and conversation id). It is stored with the delivery as JSON text, shown
    to nobody but kept for as long as the delivery is: keep it small and put **no secrets** in
    it (no tokens, no signed webhook URLs) — the adapter has its target's secrets when it needs
    them.
    """

    platform_id: str
    data: Mapping[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Content:
    """What a revision says and where it goes; everything here is covered by the hash."""

    title: str
    body: str
    severity: Severity = Severity.INFO
    language: str = "sv"
    link: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    kind: RevisionKind = RevisionKind.ORIGINAL

    def canonical(self) -> bytes:
        """A stable byte form: sorted keys, sorted targets, no insignificant whitespace."""
        data: dict[str, Any] = asdict(self)
        data["targets"] = sorted(self.targets)
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()

    def content_hash(self) -> str:
        """SHA-256 hex digest of :meth:`canonical`."""
        import hashlib  # loads OpenSSL; `broadcaster --help` needs this module but not hashing

        return hashlib.sha256(self.canonical()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Revision:
    """One stored revision of an announcement."""

    id: int
    announcement_id: int
    number: int
    content: Content
    content_hash: str
    author: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class Announcement:
    """An announcement with its current revision."""

    id: int
    uid: str
    state: AnnouncementState
    author: str
    created_at: datetime
    updated_at: datetime
    revision: Revision
