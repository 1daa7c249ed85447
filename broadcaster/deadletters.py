"""Dead letters: deliveries the queue gave up on, listed for a person and put back by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update

from broadcaster.app import App
from broadcaster.errors import InputError, NotFoundError
from broadcaster.model import AnnouncementState, DeliveryState
from broadcaster.privacy import mask_phone
from broadcaster.queue.jobs import JobKind, JobState, enqueue
from broadcaster.store.announcements import get_announcement, set_state
from broadcaster.store.audit import record_event
from broadcaster.store.schema import announcements, deliveries, jobs, revisions

__all__ = ["list_dead_letters", "retry_dead_letters"]


def list_dead_letters(app: App) -> dict[str, Any]:
    """``{"deadletters": [{"id", "announcement_id", "title", "target", ...}]}``, oldest first."""
    query = (
        select(deliveries, revisions.c.title, announcements.c.state.label("announcement_state"))
        .join(revisions, revisions.c.id == deliveries.c.revision_id)
        .join(announcements, announcements.c.id == deliveries.c.announcement_id)
        .where(deliveries.c.state == DeliveryState.DEAD)
        .order_by(deliveries.c.updated_at, deliveries.c.id)
    )
    with app.store.read() as conn:
        rows = conn.execute(query).all()
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
                "last_error": row.last_error,
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
        query = select(deliveries.c.id, deliveries.c.announcement_id, deliveries.c.target).where(
            deliveries.c.state == DeliveryState.DEAD
        )
        if delivery_ids is not None:
            query = query.where(deliveries.c.id.in_(delivery_ids))
        found = conn.execute(query.order_by(deliveries.c.id)).all()
        if delivery_ids is not None:
            missing = sorted(set(delivery_ids) - {row.id for row in found})
            if missing:
                raise NotFoundError(
                    f"not dead letters: {', '.join(map(str, missing))} "
                    "(see `broadcaster deadletters`)"
                )
        for row in found:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == row.id)
                .values(
                    state=DeliveryState.PENDING,
                    attempts=0,
                    age_from=now,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
            requeued = conn.execute(
                update(jobs)
                .where(jobs.c.delivery_id == row.id)
                .values(state=JobState.QUEUED, run_at=now, attempts=0, updated_at=now)
            ).rowcount
            if not requeued:
                enqueue(
                    conn,
                    kind=JobKind.DELIVER,
                    delivery_id=row.id,
                    target=row.target,
                    run_at=now,
                    now=now,
                )
        for announcement_id in sorted({row.announcement_id for row in found}):
            _reopen(conn, announcement_id, now)
            record_event(
                conn,
                actor=actor,
                action="deadletters_retried",
                now=now,
                announcement_id=announcement_id,
                deliveries=[row.id for row in found if row.announcement_id == announcement_id],
            )
    if delivery_ids is None and not found:
        raise InputError("there are no dead letters to retry")
    return [row.id for row in found]


def _reopen(conn: Any, announcement_id: int, now: Any) -> None:
    announcement = get_announcement(conn, announcement_id, lock=True)
    if announcement.state == AnnouncementState.PARTIALLY_FAILED:
        set_state(conn, announcement_id, announcement.state, AnnouncementState.DISPATCHING, now)
