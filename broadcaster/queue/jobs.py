"""The job table: enqueue, claim with a lease, and settle.

A job carries ids, never payloads: the worker reads the delivery and re-checks its state before
acting. Claiming sets a lease (``lease_owner`` until ``lease_until``); a worker that dies loses its
lease when that time passes and the job is claimed again. Settling checks the lease owner, so a
worker that was presumed dead cannot overwrite the outcome of the worker that took over.

Claims and settlements work in batches (one transaction for many jobs); that is what lets one
worker move thousands of jobs a second on SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select, update

from broadcaster.store.schema import jobs
from broadcaster.store.sql import inserted_id

__all__ = [
    "Job",
    "JobKind",
    "JobState",
    "NewJob",
    "Settlement",
    "apply_settlements",
    "claim",
    "enqueue",
    "enqueue_many",
    "release",
]

log = logging.getLogger("broadcaster.queue")


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class JobKind(StrEnum):
    """What a job does (the worker maps each kind to a handler)."""

    DELIVER = "deliver"


@dataclass(frozen=True, kw_only=True)
class Job:
    """A claimed job. ``reclaimed`` is True when its previous lease expired (a worker died)."""

    id: int
    kind: str
    delivery_id: int | None
    target: str | None
    attempts: int
    run_at: datetime
    lease_until: datetime
    reclaimed: bool


@dataclass(frozen=True, kw_only=True)
class NewJob:
    """A job to enqueue."""

    kind: str
    run_at: datetime
    delivery_id: int | None = None
    target: str | None = None


@dataclass(frozen=True, kw_only=True)
class Settlement:
    """What became of a claimed job, written by :func:`apply_settlements`.

    ``apply`` runs in the same transaction (after the lease check), so a delivery's new state
    commits together with its job's, or not at all.
    """

    job_id: int
    state: JobState
    run_at: datetime | None = None
    error: str | None = None
    #: False when the job did not really run (deferred by a rate limit): its claim is not counted.
    attempted: bool = True
    apply: Callable[[Connection], None] | None = None


def enqueue(
    conn: Connection,
    *,
    kind: str,
    delivery_id: int | None,
    run_at: datetime,
    now: datetime,
    target: str | None = None,
) -> int:
    """Add a job in the caller's transaction; returns its id."""
    new = NewJob(kind=kind, delivery_id=delivery_id, target=target, run_at=run_at)
    return inserted_id(conn.execute(jobs.insert().values(**_row(new, now))))


def enqueue_many(conn: Connection, new_jobs: Iterable[NewJob], now: datetime) -> int:
    """Add many jobs with one statement; returns how many."""
    rows = [_row(job, now) for job in new_jobs]
    if rows:
        conn.execute(jobs.insert(), rows)
    return len(rows)


def _row(job: NewJob, now: datetime) -> dict[str, Any]:
    return {
        "kind": job.kind,
        "delivery_id": job.delivery_id,
        "target": job.target,
        "state": JobState.QUEUED,
        "run_at": job.run_at,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def claim(
    conn: Connection,
    *,
    owner: str,
    limit: int,
    lease: timedelta,
    now: datetime,
    exclude_targets: Collection[str] = (),
) -> list[Job]:
    """Lease up to ``limit`` due jobs: queued and due, or running with an expired lease.

    Jobs for ``exclude_targets`` (targets this worker may not send to right now) stay queued
    for other workers, or for later.
    """
    due = _pick(conn, JobState.QUEUED, jobs.c.run_at <= now, limit, exclude_targets)
    expired = _pick(
        conn, JobState.RUNNING, jobs.c.lease_until < now, limit - len(due), exclude_targets
    )
    found = {job_id: False for job_id in due} | {job_id: True for job_id in expired}
    if not found:
        return []
    lease_until = now + lease
    rows = conn.execute(
        update(jobs)
        .where(jobs.c.id.in_(found))
        .values(
            state=JobState.RUNNING,
            lease_owner=owner,
            lease_until=lease_until,
            attempts=jobs.c.attempts + 1,
            updated_at=now,
        )
        .returning(
            jobs.c.id,
            jobs.c.kind,
            jobs.c.delivery_id,
            jobs.c.target,
            jobs.c.attempts,
            jobs.c.run_at,
        )
    ).all()
    claimed = [
        Job(
            id=row.id,
            kind=row.kind,
            delivery_id=row.delivery_id,
            target=row.target,
            attempts=row.attempts,
            run_at=row.run_at,
            lease_until=lease_until,
            reclaimed=found[row.id],
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda job: (job.run_at, job.id))


def _pick(
    conn: Connection,
    state: JobState,
    condition: Any,
    limit: int,
    exclude_targets: Collection[str],
) -> list[int]:
    if limit <= 0:
        return []
    order = jobs.c.run_at if state == JobState.QUEUED else jobs.c.lease_until
    query = select(jobs.c.id).where(jobs.c.state == state, condition).order_by(order).limit(limit)
    if exclude_targets:
        query = query.where((jobs.c.target.is_(None)) | (jobs.c.target.not_in(exclude_targets)))
    if conn.dialect.name == "postgresql":
        # Other workers skip the rows this one is claiming instead of waiting for them.
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query).scalars())


def apply_settlements(
    conn: Connection, owner: str, settlements: Sequence[Settlement], now: datetime
) -> int:
    """Write many settlements in the caller's transaction; returns how many were still ours.

    Three steps, so a batch costs a few statements rather than a few per job: one query checks
    (and on PostgreSQL locks) every lease at once; each domain update runs in its own savepoint,
    so one that fails is logged and skipped (its job keeps the lease and is taken over, then
    verified, when the lease expires) without losing the others; then the jobs are settled with
    one UPDATE per distinct outcome.
    """
    held = _held_by(conn, owner, [s.job_id for s in settlements])
    settled = [s for s in settlements if _apply_domain(conn, s, held)]
    _settle_grouped(conn, settled, now)
    return len(settled)


def _apply_domain(conn: Connection, settlement: Settlement, held: set[int]) -> bool:
    """Run a settlement's domain update in a savepoint; False when it cannot be settled."""
    if settlement.job_id not in held:
        log.warning("job %s: the lease was lost; its new owner decides", settlement.job_id)
        return False
    if settlement.apply is None:
        return True
    try:
        with conn.begin_nested():
            settlement.apply(conn)
    except Exception:
        log.exception("job %s: could not record its outcome", settlement.job_id)
        return False
    return True


def _settle_grouped(conn: Connection, settled: Sequence[Settlement], now: datetime) -> None:
    """One UPDATE per distinct outcome (state, next run, error, whether it was an attempt)."""
    groups: dict[tuple[JobState, datetime | None, str | None, bool], list[int]] = {}
    for settlement in settled:
        key = (settlement.state, settlement.run_at, settlement.error, settlement.attempted)
        groups.setdefault(key, []).append(settlement.job_id)
    for (state, run_at, error, attempted), job_ids in groups.items():
        values: dict[str, Any] = {
            "state": state,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
        }
        if run_at is not None:
            values["run_at"] = run_at
        if error is not None or state == JobState.DONE:
            values["last_error"] = error
        if not attempted:
            values["attempts"] = jobs.c.attempts - 1
        for chunk in _chunks(job_ids):
            conn.execute(update(jobs).where(jobs.c.id.in_(chunk)).values(**values))


def _held_by(conn: Connection, owner: str, job_ids: list[int]) -> set[int]:
    """The jobs among ``job_ids`` that ``owner`` still holds a lease on."""
    held: set[int] = set()
    for chunk in _chunks(job_ids):
        query = select(jobs.c.id).where(
            jobs.c.id.in_(chunk), jobs.c.lease_owner == owner, jobs.c.state == JobState.RUNNING
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        held.update(conn.execute(query).scalars())
    return held


def _chunks(ids: list[int], size: int = 900) -> Iterator[list[int]]:
    # Keeps each statement under every backend's limit on bound parameters.
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def release(conn: Connection, job_ids: Collection[int], owner: str, now: datetime) -> int:
    """Give claimed jobs back untouched (a worker shutting down); returns how many."""
    if not job_ids:
        return 0
    return conn.execute(
        update(jobs)
        .where(
            jobs.c.id.in_(job_ids), jobs.c.lease_owner == owner, jobs.c.state == JobState.RUNNING
        )
        .values(
            state=JobState.QUEUED,
            lease_owner=None,
            lease_until=None,
            attempts=jobs.c.attempts - 1,
            updated_at=now,
        )
    ).rowcount
