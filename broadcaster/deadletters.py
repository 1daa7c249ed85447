"""Dead letters: deliveries the queue gave up on, listed for a person and put back by hand."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from broadcaster.app import App
from broadcaster.errors import InputError, NotFoundError
from broadcaster.model import AnnouncementState, DeliveryState
from broadcaster.privacy import mask_phone
from broadcaster.queue.jobs import JobKind, JobState, NewJob, enqueue_many
from broadcaster.store.announcements import lock_state, set_state
from broadcaster.store.audit import record_event
from broadcaster.store.schema import deliveries, jobs, revisions

__all__ = ["list_dead_letters", "retry_dead_letters"]


def list_dead_letters(app: App) -> dict[str, Any]:
    """``{"deadletters": [{"id", "announcement_id", "title", "target", ...}]}``, oldest first."""
    query = (
        select(deliveries, revisions.c.title)
        .join(revisions, revisions.c.id == deliveries.c.revision_id)
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
        _requeue(conn, {row.id: row.target for row in found}, now)
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


def _requeue(conn: Connection, targets: dict[int, str], now: datetime) -> None:
    """Put dead deliveries (id -> target) and their jobs back in the queue, a few statements
    for any number of them."""
    ids = list(targets)
    for chunk in (ids[start : start + 900] for start in range(0, len(ids), 900)):
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(chunk))
            .values(
                state=DeliveryState.PENDING,
                attempts=0,
                age_from=now,
                next_attempt_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            update(jobs)
            .where(jobs.c.delivery_id.in_(chunk))
            .values(state=JobState.QUEUED, run_at=now, attempts=0, updated_at=now)
        )
    with_job = set(
        conn.execute(select(jobs.c.delivery_id).where(jobs.c.delivery_id.in_(ids))).scalars()
    )
    enqueue_many(
        conn,
        [
            NewJob(kind=JobKind.DELIVER, delivery_id=delivery_id, target=target, run_at=now)
            for delivery_id, target in targets.items()
            if delivery_id not in with_job
        ],
        now,
    )


def _reopen(conn: Connection, announcement_id: int, now: datetime) -> None:
    if lock_state(conn, announcement_id) == AnnouncementState.PARTIALLY_FAILED:
        set_state(
            conn,
            announcement_id,
            AnnouncementState.PARTIALLY_FAILED,
            AnnouncementState.DISPATCHING,
            now,
        )
