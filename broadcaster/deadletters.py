"""Dead letters (owner of no table; writes through store/ and queue/): deliveries the queue gave
up on, and approval cards it could not post to Teams, listed for a person and put back in the
queue by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broadcaster.app import App
from broadcaster.approval_card_queue import cards_enabled, queue_card
from broadcaster.errors import InputError, NotFoundError
from broadcaster.model import AnnouncementState
from broadcaster.privacy import mask_phone, mask_phone_numbers
from broadcaster.queue.jobs import (
    JobKind,
    NewJob,
    dead_announcement_jobs,
    enqueue_many,
    requeue,
)
from broadcaster.store.announcements import get_announcement, lock_state, set_state
from broadcaster.store.audit import record_event
from broadcaster.store.deliveries import dead_letters, requeue_dead

__all__ = ["list_dead_letters", "retry_approval_cards", "retry_dead_letters"]


def list_dead_letters(app: App) -> dict[str, Any]:
    """``{"deadletters": [{"id", "announcement_id", "title", "target", ...}], "approval_cards":
    [{"announcement_id", "title", "attempts", "last_error", "dead_since"}]}``, oldest first."""
    with app.store.read() as conn:
        rows = dead_letters(conn)
        cards = [
            (job, get_announcement(conn, job.announcement_id).revision.content.title)
            for job in dead_announcement_jobs(conn, JobKind.APPROVAL_CARD)
        ]
    return {
        "approval_cards": [
            {
                "announcement_id": job.announcement_id,
                "title": title,
                "attempts": job.attempts,
                "last_error": mask_phone_numbers(job.last_error) if job.last_error else None,
                "dead_since": job.dead_since.isoformat(timespec="seconds"),
            }
            for job, title in cards
        ],
        "deadletters": [
            {
                "id": row.id,
                "announcement_id": row.announcement_id,
                "title": row.title,
                "target": row.target,
                "channel": row.channel,
                "recipient": mask_phone(row.recipient) if row.recipient else None,
                "attempts": row.attempts,
                "last_error": mask_phone_numbers(row.last_error) if row.last_error else None,
                "dead_since": row.updated_at.isoformat(timespec="seconds"),
            }
            for row in rows
        ],
    }


def retry_dead_letters(app: App, actor: str, delivery_ids: Sequence[int] | None) -> list[int]:
    """Queue dead deliveries again (all when ``delivery_ids`` is None); returns their ids.

    Attempts and the maximum-age window start afresh: a person decided it is worth trying.
    """
    now = app.clock()
    with app.store.write() as conn:
        found = requeue_dead(conn, delivery_ids, now)
        if delivery_ids is not None:
            missing = sorted(set(delivery_ids) - {d.id for d in found})
            if missing:
                raise NotFoundError(
                    f"not dead letters: {', '.join(map(str, missing))} "
                    "(see `broadcaster deadletters`)"
                )
        with_job = requeue(conn, [d.id for d in found], now)
        enqueue_many(
            conn,
            [
                NewJob(kind=JobKind.DELIVER, delivery_id=d.id, target=d.target, run_at=now)
                for d in found
                if d.id not in with_job
            ],
            now,
        )
        for announcement_id in sorted({d.announcement_id for d in found}):
            if lock_state(conn, announcement_id) == AnnouncementState.PARTIALLY_FAILED:
                set_state(
                    conn,
                    announcement_id,
                    AnnouncementState.PARTIALLY_FAILED,
                    AnnouncementState.DISPATCHING,
                    now,
                )
            record_event(
                conn,
                actor=actor,
                action="deadletters_retried",
                now=now,
                announcement_id=announcement_id,
                deliveries=[d.id for d in found if d.announcement_id == announcement_id],
            )
    if delivery_ids is None and not found:
        raise InputError("there are no dead letters to retry")
    return [d.id for d in found]


def retry_approval_cards(app: App, actor: str) -> list[int]:
    """Have the worker post or update every card it gave up on; returns their announcements."""
    if not cards_enabled(app.config):
        raise InputError(
            "approval cards are off: they need [teams_bot] and [approval] teams_channel_id "
            "in broadcaster.toml"
        )
    now = app.clock()
    with app.store.write() as conn:
        announcement_ids = [
            job.announcement_id for job in dead_announcement_jobs(conn, JobKind.APPROVAL_CARD)
        ]
        for announcement_id in announcement_ids:
            queue_card(conn, app.config, announcement_id, now)
            record_event(
                conn,
                actor=actor,
                action="approval_card_retried",
                now=now,
                announcement_id=announcement_id,
            )
    return announcement_ids
