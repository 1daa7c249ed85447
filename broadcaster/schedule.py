"""Sending later: a scheduled send, seen, moved and taken back.

A send with ``--at`` is dispatched at once, like any other (deliveries and jobs in one
transaction, see :mod:`broadcaster.dispatch`), but its jobs are due at the chosen time; the
schedule *is* those jobs' ``run_at``. So nothing can fire twice or be forgotten, and moving or
taking back a send is one transaction over the jobs no worker has touched: if any job was
claimed or ran, the whole change is refused and nothing is half-cancelled.

:class:`Schedule` is what people see (``status``, ``list``, ``--json``). It is the one-shot
kind; recurring re-posts (``schedule ID --every 4h``) are another ``kind`` of the same record,
so readers of the JSON already look at ``kind``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.errors import InputError, StateError
from broadcaster.model import Announcement, AnnouncementState
from broadcaster.queue.jobs import (
    move_unstarted,
    started_deliveries,
    unstarted_runs,
    withdraw_unstarted,
)
from broadcaster.store.announcements import get_announcement, set_state
from broadcaster.store.audit import record_event
from broadcaster.store.deliveries import delete_pending
from broadcaster.timeutil import format_short

__all__ = [
    "CONFIRM_AFTER",
    "GRACE",
    "MAX_AHEAD",
    "Schedule",
    "SendOutcome",
    "check_send_time",
    "pending_schedules",
    "send_announcement",
    "unschedule",
]

#: A send further ahead than this needs ``--yes``: a wrong month is the typical slip.
CONFIRM_AFTER = timedelta(days=7)
#: Nothing is scheduled further ahead: a year 9999 is a typing error, not a plan.
MAX_AHEAD = timedelta(days=366)
#: A time this little in the past means "now": ``18:00`` typed at 18:00:30, or ``now`` itself
#: (read a moment before this module reads the clock).
GRACE = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """When a send is due. ``kind`` is ``once``; recurring re-posts will add their own kind."""

    at: datetime
    kind: str = "once"

    def to_json(self, timezone: str, now: datetime) -> dict[str, Any]:
        """``{"kind", "at" (ISO 8601, UTC), "local" (e.g. "tis 2 dec 18:00"), "timezone"}``."""
        return {
            "kind": self.kind,
            "at": self.at.isoformat(timespec="seconds"),
            "local": format_short(self.at, timezone, now),
            "timezone": timezone,
        }


@dataclass(frozen=True, kw_only=True)
class SendOutcome:
    """What ``send`` did: queued now, scheduled, or moved (``previous`` is the old time)."""

    announcement: Announcement
    at: datetime | None
    previous: datetime | None = None


def check_send_time(at: datetime, now: datetime, timezone: str, *, confirmed: bool) -> None:
    """Refuse a time in the past, beyond :data:`MAX_AHEAD`, or (unconfirmed) a week ahead."""
    if at < now:
        raise InputError(_past_message(at, now, timezone))
    ahead = at - now
    when = format_short(at, timezone, now)
    if ahead > MAX_AHEAD:
        raise InputError(f"{when} is more than a year ahead; give a time within the next year")
    if ahead > CONFIRM_AFTER and not confirmed:
        raise InputError(
            f"{when} is {ahead.days} days ahead; a send more than {CONFIRM_AFTER.days} days "
            "ahead needs --yes: check the date, then repeat the command with --yes"
        )


def pending_schedules(
    conn: Connection, revision_ids: Collection[int], now: datetime
) -> dict[int, Schedule]:
    """The revisions (by id) whose send waits for a time still ahead, and that time."""
    return {
        revision_id: Schedule(at=at)
        for revision_id, at in unstarted_runs(conn, revision_ids).items()
        if at > now
    }


def send_announcement(
    app: App,
    actor: str,
    announcement_id: int,
    *,
    at: datetime | None = None,
    confirmed: bool = False,
) -> SendOutcome:
    """Send the approved revision now, or at ``at``; a scheduled send given ``at`` is moved."""
    now = app.clock()
    if at is not None:
        at = max(at, now) if at >= now - GRACE else at
        check_send_time(at, now, app.config.broadcaster.timezone, confirmed=confirmed)
    with app.store.read() as conn:
        seen = get_announcement(conn, announcement_id)
        waiting = pending_schedules(conn, [seen.revision.id], now).get(seen.revision.id)
    if seen.state == AnnouncementState.DISPATCHING and at is not None:
        return _move(app, actor, seen, at)
    if waiting is not None:
        when = format_short(waiting.at, app.config.broadcaster.timezone, now)
        raise StateError(
            f"announcement {announcement_id} is already scheduled for {when}; to send it now "
            f"instead: broadcaster send {announcement_id} --at now; to take it back: "
            f"broadcaster send {announcement_id} --cancel"
        )
    # Imported here: dispatch renders every target (Jinja2), which `status` and `list` never do.
    from broadcaster.dispatch import dispatch_revision

    later = at if at is not None and at > now else None
    announcement = dispatch_revision(app, actor, announcement_id, at=later)
    return SendOutcome(announcement=announcement, at=later)


def unschedule(app: App, actor: str, announcement_id: int) -> SendOutcome:
    """Take back a send no worker has started; the announcement is approved again."""
    now = app.clock()
    with app.store.write() as conn:
        current = _locked_dispatching(conn, announcement_id, "take back")
        revision = current.revision
        was = unstarted_runs(conn, [revision.id]).get(revision.id)
        deleted, total = withdraw_unstarted(conn, revision.id)
        if was is None or deleted != total:
            raise _already_went(conn, current, "take back")
        removed, count = delete_pending(conn, revision.id)
        if removed != count:
            raise _already_went(conn, current, "take back")
        set_state(conn, announcement_id, current.state, AnnouncementState.APPROVED, now)
        record_event(
            conn,
            actor=actor,
            action="unscheduled",
            now=now,
            announcement_id=announcement_id,
            revision=revision.number,
            content_hash=revision.content_hash,
            run_at=was.isoformat(),
            deliveries=removed,
        )
        return SendOutcome(
            announcement=get_announcement(conn, announcement_id), at=None, previous=was
        )


def _move(app: App, actor: str, seen: Announcement, at: datetime) -> SendOutcome:
    now = app.clock()
    with app.store.write() as conn:
        current = _locked_dispatching(conn, seen.id, "move")
        revision = current.revision
        was = unstarted_runs(conn, [revision.id]).get(revision.id)
        moved, total = move_unstarted(conn, revision.id, at, now)
        if was is None or moved != total:
            raise _already_went(conn, current, "move")
        record_event(
            conn,
            actor=actor,
            action="rescheduled",
            now=now,
            announcement_id=seen.id,
            revision=revision.number,
            content_hash=revision.content_hash,
            run_at=at.isoformat(),
            previous_run_at=was.isoformat(),
        )
        return SendOutcome(announcement=current, at=at, previous=was)


def _locked_dispatching(conn: Connection, announcement_id: int, verb: str) -> Announcement:
    current = get_announcement(conn, announcement_id, lock=True)
    if current.state != AnnouncementState.DISPATCHING:
        raise StateError(
            f"announcement {announcement_id} is {current.state}; it has no scheduled send to "
            f"{verb} (see `broadcaster status {announcement_id}`)"
        )
    return current


def _already_went(conn: Connection, announcement: Announcement, verb: str) -> StateError:
    """The refusal when a worker touched part of the send; names what it touched."""
    started = started_deliveries(conn, announcement.revision.id)
    parts = [f"{target}: {count} {state}" for (target, state), count in started.items()]
    shown = "; ".join(parts[:6]) + (f"; and {len(parts) - 6} more" if len(parts) > 6 else "")
    return StateError(
        f"cannot {verb} the send of announcement {announcement.id}: it has started "
        f"({shown or 'its deliveries are being sent'}); nothing was changed. "
        f"Follow it with `broadcaster status {announcement.id}`"
    )


def _past_message(at: datetime, now: datetime, timezone: str) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    message = (
        f"{format_short(at, timezone, now)} is in the past: it is now "
        f"{format_short(now, timezone, now)} ({timezone}); give a later time, e.g. +30m"
    )
    local = at.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        tomorrow = local.replace(tzinfo=None) + timedelta(days=1)
        message += f", or {tomorrow:%Y-%m-%d %H:%M} for tomorrow"
    return message
