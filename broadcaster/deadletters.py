"""Dead letters (owner of no table; writes through store/ and queue/): deliveries the queue gave
up on, listed for a person and put back in the queue by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broadcaster.app import App
from broadcaster.errors import InputError, NotFoundError
from broadcaster.model import AnnouncementState
from broadcaster.privacy import mask_phone, mask_phone_numbers
from broadcaster.queue.jobs import JobKind, NewJob, enqueue_many, requeue
from broadcaster.store.announcements import lock_state, set_state
from broadcaster.store.audit import record_event
from broadcaster.store.deliveries import dead_letters, requeue_dead

__all__ = ["list_dead_letters", "retry_dead_letters"]


def list_dead_letters(app: App) -> dict[str, Any]:
    """``{"deadletters": [{"id", "announcement_id", "title", "target", ...}]}``, oldest first."""
    with app.store.read() as conn:
        rows = dead_letters(conn)
    return {
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
        ]
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
