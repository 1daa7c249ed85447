"""Read models for ``status``, ``list`` and ``audit``: plain dicts in the DESIGN §5 JSON shapes.

The CLI prints these as JSON or as tables; keeping the shape here means both views agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.errors import InputError
from broadcaster.list_progress import failed_json, list_counts, recipient_entries
from broadcaster.model import Announcement, AnnouncementState
from broadcaster.privacy import mask_phone_numbers
from broadcaster.queue.jobs import activity
from broadcaster.schedule import pending_schedules
from broadcaster.state_notes import StateNote, state_notes
from broadcaster.store.announcements import (
    get_announcement,
    list_announcements,
    revision_numbers,
)
from broadcaster.store.audit import list_events
from broadcaster.store.deliveries import (
    Delivery,
    RecipientGroup,
    announcement_state_counts,
    failed_recipients,
    recipient_groups,
    target_deliveries,
)

__all__ = [
    "announcement_list",
    "announcement_status",
    "audit_log",
    "failed_recipients_report",
    "overview",
    "workers_absent",
]


def announcement_status(
    app: App, announcement_id: int, target: str | None = None
) -> dict[str, Any]:
    """``{"id", "state", "revision", "title", "deliveries": [...], "lists": {...}}``.

    ``deliveries`` holds every one-per-target delivery, and for a per-recipient target (an SMS
    list) one entry per revision that sums its recipients up; ``lists`` the progress of each
    list (:mod:`broadcaster.list_progress`). With ``target``, only that target's (InputError
    when the announcement has no such target).
    """
    with app.store.read() as conn:
        announcement = get_announcement(conn, announcement_id)
        singles = target_deliveries(conn, announcement_id)
        groups = recipient_groups(conn, announcement_id)
        numbers = revision_numbers(conn, announcement_id)
        schedules = _schedules(app, conn, [announcement])
        note = state_notes(conn, [announcement]).get(announcement.id)
    if target is not None:
        _check_target(announcement, target, {d.target for d in singles} | _targets(groups))
        singles = [d for d in singles if d.target == target]
        groups = [g for g in groups if g.target == target]
    entries = [(d.id, _delivery_json(d, numbers.get(d.revision_id))) for d in singles]
    entries += recipient_entries(groups, numbers)
    return {
        "id": announcement.id,
        "state": str(announcement.state),
        "revision": announcement.revision.number,
        "title": announcement.revision.content.title,
        "content_hash": announcement.revision.content_hash,
        "schedule": schedules.get(announcement.id),
        # Why it is in this state: a rejection's or cancellation's reason, or an edit that
        # voided the approvals; None when the state needs no explaining.
        "note": _note_json(note),
        # In creation order, as the deliveries were made.
        "deliveries": [entry for _, entry in sorted(entries, key=lambda pair: pair[0])],
        "lists": list_counts(groups, numbers),
    }


def failed_recipients_report(app: App, announcement_id: int, target: str) -> dict[str, Any]:
    """``{"id", "target", "revision", "count", "failed": [...]}``: the recipients of ``target``
    whose delivery failed in the newest revision sent to it, numbers masked.

    Failed means dead, or sent and reported undelivered or failed by the platform.
    InputError when the announcement has no such target, or does not send to it per recipient.
    """
    with app.store.read() as conn:
        announcement = get_announcement(conn, announcement_id)
        groups = [g for g in recipient_groups(conn, announcement_id) if g.target == target]
        if not groups:
            singles = {d.target for d in target_deliveries(conn, announcement_id)}
            _check_target(announcement, target, singles)
            raise InputError(
                f"announcement {announcement_id} has no recipients on {target}: --failed lists "
                f"the recipients of an SMS list that failed; see `broadcaster status "
                f"{announcement_id} --target {target}`"
            )
        newest = max(g.revision_id for g in groups)
        failed = failed_recipients(conn, newest, target)
        numbers = revision_numbers(conn, announcement_id)
    return {
        "id": announcement.id,
        "title": announcement.revision.content.title,
        "target": target,
        "revision": numbers.get(newest),
        "count": len(failed),
        "failed": [failed_json(d) for d in failed],
    }


def _targets(groups: list[RecipientGroup]) -> set[str]:
    return {g.target for g in groups}


def _check_target(announcement: Announcement, target: str, sent_to: set[str]) -> None:
    """InputError unless ``target`` is one of the announcement's (now, or sent to before)."""
    known = sent_to | set(announcement.revision.content.targets)
    if target not in known:
        raise InputError(
            f"announcement {announcement.id} has no target {target[:60]!r}; "
            f"its targets: {', '.join(sorted(known)) or 'none'}"
        )


def overview(app: App, limit: int = 20) -> dict[str, Any]:
    """Recent announcements with delivery counts per state."""
    with app.store.read() as conn:
        announcements = list_announcements(conn)[:limit]
        schedules = _schedules(app, conn, announcements)
        notes = state_notes(conn, announcements)
        # One grouped query for all of them: an SMS list is thousands of deliveries.
        counts = announcement_state_counts(conn, [a.id for a in announcements])
        rows = []
        for announcement in announcements:
            rows.append(
                {
                    "id": announcement.id,
                    "state": str(announcement.state),
                    "revision": announcement.revision.number,
                    "title": announcement.revision.content.title,
                    "schedule": schedules.get(announcement.id),
                    "note": _note_json(notes.get(announcement.id)),
                    "deliveries": dict(sorted(counts.get(announcement.id, {}).items())),
                }
            )
    return {"announcements": rows}


def announcement_list(app: App, state: AnnouncementState | None = None) -> dict[str, Any]:
    """``{"announcements": [{"id", "state", "revision", "title", ...}]}``, newest first."""
    with app.store.read() as conn:
        announcements = list_announcements(conn, state)
        schedules = _schedules(app, conn, announcements)
        notes = state_notes(conn, announcements)
    return {
        "announcements": [
            {
                "id": a.id,
                "state": str(a.state),
                "revision": a.revision.number,
                "title": a.revision.content.title,
                "severity": str(a.revision.content.severity),
                "author": a.author,
                "targets": list(a.revision.content.targets),
                "content_hash": a.revision.content_hash,
                "updated_at": _iso(a.updated_at),
                "schedule": schedules.get(a.id),
                "note": _note_json(notes.get(a.id)),
            }
            for a in announcements
        ]
    }


def audit_log(app: App, announcement_id: int | None = None) -> dict[str, Any]:
    """``{"events": [{"id", "at", "actor", "action", "announcement_id", "revision", ...}]}``."""
    with app.store.read() as conn:
        if announcement_id is not None:
            get_announcement(conn, announcement_id)  # a clear error for an unknown id
        events = list_events(conn, announcement_id)
    return {
        "events": [
            {
                "id": e.id,
                "at": _iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "announcement_id": e.announcement_id,
                "revision": e.revision,
                "details": {
                    key: _masked(value) if isinstance(value, str) else value
                    for key, value in e.details.items()
                },
            }
            for e in events
        ]
    }


def _schedules(
    app: App, conn: Connection, announcements: list[Announcement]
) -> dict[int, dict[str, Any]]:
    """The scheduled sends among ``announcements`` (by announcement id), as JSON."""
    now = app.clock()
    dispatching = {
        a.revision.id: a.id for a in announcements if a.state == AnnouncementState.DISPATCHING
    }
    timezone = app.config.broadcaster.timezone
    return {
        dispatching[revision_id]: schedule.to_json(timezone, now)
        for revision_id, schedule in pending_schedules(conn, dispatching, now).items()
    }


def _note_json(note: StateNote | None) -> dict[str, Any] | None:
    return note.to_json() if note else None


def workers_absent(app: App, silence: timedelta) -> bool:
    """Whether jobs are due and no worker has claimed anything for ``silence``."""
    with app.store.read() as conn:
        now = app.queue_clock(conn)
        return activity(conn, now).unattended(now, silence)


def _delivery_json(delivery: Delivery, revision: int | None) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "target": delivery.target,
        "channel": delivery.channel,
        "revision": revision,
        "state": str(delivery.state),
        "attempts": delivery.attempts,
        "platform_id": delivery.platform_id,
        # What else the platform's answer said (a website's publish step: its exit status and
        # output). Ids, never a secret by the Receipt's contract; free text in it is masked by
        # the adapter that stores it (a chat id must not be masked as if it were a number).
        "receipt_data": dict(delivery.receipt_data) if delivery.receipt_data else None,
        # Masked again on the way out: rows written before masking was done on storing.
        "last_error": _masked(delivery.last_error),
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "sent_at": _iso(delivery.sent_at),
    }


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_phone_numbers(text)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
