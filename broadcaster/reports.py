"""Read models for ``status``, ``list`` and ``audit``: plain dicts in the DESIGN §5 JSON shapes.

The CLI prints these as JSON or as tables; keeping the shape here means both views agree.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from broadcaster.app import App
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
from broadcaster.store.deliveries import Delivery, deliveries_for

__all__ = [
    "announcement_list",
    "announcement_status",
    "audit_log",
    "overview",
    "workers_absent",
]


def announcement_status(app: App, announcement_id: int) -> dict[str, Any]:
    """``{"id", "state", "revision", "title", "deliveries": [...], "lists": {...}}``."""
    with app.store.read() as conn:
        announcement = get_announcement(conn, announcement_id)
        found = deliveries_for(conn, announcement_id)
        numbers = revision_numbers(conn, announcement_id)
        schedules = _schedules(app, conn, [announcement])
        note = state_notes(conn, [announcement]).get(announcement.id)
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
        "deliveries": [_delivery_json(d, numbers.get(d.revision_id)) for d in found],
        # SMS list progress arrives with the SMS channel; the key is part of the shape already.
        "lists": {},
    }


def overview(app: App, limit: int = 20) -> dict[str, Any]:
    """Recent announcements with delivery counts per state."""
    with app.store.read() as conn:
        announcements = list_announcements(conn)[:limit]
        schedules = _schedules(app, conn, announcements)
        notes = state_notes(conn, announcements)
        rows = []
        for announcement in announcements:
            counts = Counter(str(d.state) for d in deliveries_for(conn, announcement.id))
            rows.append(
                {
                    "id": announcement.id,
                    "state": str(announcement.state),
                    "revision": announcement.revision.number,
                    "title": announcement.revision.content.title,
                    "schedule": schedules.get(announcement.id),
                    "note": _note_json(notes.get(announcement.id)),
                    "deliveries": dict(sorted(counts.items())),
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
        # Masked again on the way out: rows written before masking was done on storing.
        "last_error": _masked(delivery.last_error),
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "sent_at": _iso(delivery.sent_at),
    }


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_phone_numbers(text)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
