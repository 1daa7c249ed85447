"""The job table: enqueue, claim with a lease, and settle.

A job carries ids, never payloads: the worker reads the delivery and re-checks its state before
acting. Claiming sets a lease (``lease_owner`` until ``lease_until``); a worker that dies loses its
lease when that time passes and the job is claimed again. Settling a job checks the lease owner,
so a worker that was presumed dead cannot overwrite the outcome of the worker that took over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from broadcaster.store.schema import jobs
from broadcaster.store.sql import inserted_id

__all__ = ["Job", "JobKind", "JobState", "claim", "enqueue", "finish", "release", "reschedule"]


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class JobKind(StrEnum):
    """What a job does."""

    DELIVER = "deliver"


@dataclass(frozen=True, kw_only=True)
class Job:
    """A claimed job. ``reclaimed`` is True when its previous lease expired (a worker died)."""

    id: int
    kind: JobKind
    delivery_id: int | None
    attempts: int
    run_at: datetime
    lease_until: datetime
    reclaimed: bool


def enqueue(
    conn: Connection, *, kind: JobKind, delivery_id: int | None, run_at: datetime, now: datetime
) -> int:
    """Add a job in the caller's transaction; returns its id."""
    return inserted_id(
        conn.execute(
            jobs.insert().values(
                kind=kind,
                delivery_id=delivery_id,
                state=JobState.QUEUED,
                run_at=run_at,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
    )


def claim(
    conn: Connection, *, owner: str, limit: int, lease: timedelta, now: datetime
) -> list[Job]:
    """Lease up to ``limit`` due jobs (queued and due, or running with an expired lease)."""
    due = or_(
        and_(jobs.c.state == JobState.QUEUED, jobs.c.run_at <= now),
        and_(jobs.c.state == JobState.RUNNING, jobs.c.lease_until < now),
    )
    query = select(jobs.c.id, jobs.c.state).where(due).order_by(jobs.c.run_at).limit(limit)
    if conn.dialect.name == "postgresql":
        # Other workers skip rows this one is claiming instead of waiting for them.
        query = query.with_for_update(skip_locked=True)
    found = {row.id: row.state for row in conn.execute(query)}
    if not found:
        return []
    lease_until = now + lease
    conn.execute(
        update(jobs)
        .where(jobs.c.id.in_(found))
        .values(
            state=JobState.RUNNING,
            lease_owner=owner,
            lease_until=lease_until,
            attempts=jobs.c.attempts + 1,
            updated_at=now,
        )
    )
    rows = conn.execute(select(jobs).where(jobs.c.id.in_(found)).order_by(jobs.c.run_at))
    return [
        Job(
            id=row.id,
            kind=JobKind(row.kind),
            delivery_id=row.delivery_id,
            attempts=row.attempts,
            run_at=row.run_at,
            lease_until=lease_until,
            reclaimed=found[row.id] == JobState.RUNNING,
        )
        for row in rows
    ]


def finish(
    conn: Connection,
    job_id: int,
    owner: str,
    now: datetime,
    *,
    dead: bool = False,
    error: Any = None,
) -> bool:
    """Mark a job done (or dead); False when ``owner`` no longer holds its lease."""
    return _settle(
        conn,
        job_id,
        owner,
        now,
        state=JobState.DEAD if dead else JobState.DONE,
        last_error=None if error is None else str(error),
    )


def reschedule(
    conn: Connection, job_id: int, owner: str, now: datetime, *, run_at: datetime, error: str
) -> bool:
    """Put a job back in the queue to run again at ``run_at``."""
    return _settle(conn, job_id, owner, now, state=JobState.QUEUED, run_at=run_at, last_error=error)


def release(conn: Connection, job_ids: list[int], owner: str, now: datetime) -> int:
    """Give claimed jobs back untouched (a worker shutting down); returns how many."""
    if not job_ids:
        return 0
    return conn.execute(
        update(jobs)
        .where(jobs.c.id.in_(job_ids), jobs.c.lease_owner == owner, jobs.c.state == "running")
        .values(
            state=JobState.QUEUED,
            lease_owner=None,
            lease_until=None,
            attempts=jobs.c.attempts - 1,
            updated_at=now,
        )
    ).rowcount


def _settle(conn: Connection, job_id: int, owner: str, now: datetime, **values: Any) -> bool:
    return (
        conn.execute(
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.lease_owner == owner,
                jobs.c.state == JobState.RUNNING,
            )
            .values(lease_owner=None, lease_until=None, updated_at=now, **values)
        ).rowcount
        == 1
    )
