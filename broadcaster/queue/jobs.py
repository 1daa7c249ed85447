"""The job table (owner of ``jobs``): enqueue, claim with a lease, renew, settle, release.

A job carries ids, never payloads: the worker reads the delivery and re-checks its state before
acting. Claiming sets a lease (``lease_owner`` until ``lease_until``); the worker renews the
leases of everything it holds while it holds it, so only a silent worker loses a lease, and its
jobs are then claimed again (``reclaims`` counts how often). Writing a job's outcome checks the
lease owner, so a worker that was presumed dead cannot overwrite the worker that took over.

Claims are sized by the caller: for each target, at most what the worker can start now. Claims
and settlements work in batches (a few statements for many jobs); ``now`` is the queue's clock
(the database's own on PostgreSQL, see :mod:`broadcaster.queue.clock`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, delete, func, literal, select, update

from broadcaster.model import DeliveryState
from broadcaster.privacy import mask_phone_numbers
from broadcaster.store.schema import UtcDateTime, deliveries, jobs
from broadcaster.store.sql import chunked

__all__ = [
    "DeadJob",
    "Job",
    "JobKind",
    "JobState",
    "NewJob",
    "QueueActivity",
    "QueueDepth",
    "Settlement",
    "activity",
    "claim",
    "dead_announcement_jobs",
    "depth",
    "enqueue_for_announcement",
    "enqueue_many",
    "enqueue_revision",
    "move_unstarted",
    "oldest_due",
    "release",
    "renew",
    "requeue",
    "settle_jobs",
    "started_deliveries",
    "unstarted_runs",
    "withdraw_unstarted",
]

log = logging.getLogger("broadcaster.queue")

# Keeps each statement under every backend's limit on bound parameters.


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class JobKind(StrEnum):
    """What a job does (the worker maps each kind to a handler)."""

    DELIVER = "deliver"
    #: Post or update an announcement's approval card in Teams (and tell its author).
    APPROVAL_CARD = "approval_card"


@dataclass(frozen=True, kw_only=True)
class Job:
    """A claimed job; ``reclaimed`` when its previous lease expired (its worker went silent)."""

    id: int
    kind: str
    delivery_id: int | None
    target: str | None
    priority: int
    attempts: int
    reclaims: int
    failures: int
    run_at: datetime
    reclaimed: bool
    #: The announcement a job about a whole announcement (``approval_card``) is for.
    announcement_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class NewJob:
    """A job to enqueue."""

    kind: str
    run_at: datetime
    delivery_id: int | None = None
    target: str | None = None
    priority: int = 2
    announcement_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Settlement:
    """What became of a claimed job, written by :func:`settle_jobs`.

    ``outcome`` is the handler's own record of what happened (e.g. the delivery's new state); the
    handler writes it in the same transaction, just before the job rows.
    """

    job_id: int
    state: JobState
    #: For ``QUEUED``: run again this many seconds after the settlement is written.
    delay: float = 0.0
    error: str | None = None
    #: False when the job did not really run (deferred, or the database was away): not counted.
    attempted: bool = True
    #: True when the handler itself failed (a bug, not a platform's answer): counted.
    failed: bool = False
    outcome: Any = None


def enqueue_many(conn: Connection, new_jobs: Iterable[NewJob], now: datetime) -> int:
    """Add many jobs with one statement; returns how many."""
    rows = [
        {
            "kind": job.kind,
            "delivery_id": job.delivery_id,
            "announcement_id": job.announcement_id,
            "target": job.target,
            "priority": job.priority,
            "state": JobState.QUEUED,
            "run_at": job.run_at,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for job in new_jobs
    ]
    if rows:
        conn.execute(jobs.insert(), rows)
    return len(rows)


def enqueue_for_announcement(
    conn: Connection, *, kind: str, announcement_id: int, priority: int, now: datetime
) -> bool:
    """One job of ``kind`` about an announcement, unless one is already waiting untouched.

    The waiting job reads the announcement when it runs, so it covers this request too; a job
    already running may have read it before the change, so then a new one is added. Returns
    True when a job was added.
    """
    waiting = conn.execute(
        select(jobs.c.id)
        .where(jobs.c.kind == kind, jobs.c.announcement_id == announcement_id, _UNSTARTED)
        .limit(1)
    ).first()
    if waiting is not None:
        return False
    enqueue_many(
        conn,
        [NewJob(kind=kind, run_at=now, announcement_id=announcement_id, priority=priority)],
        now,
    )
    return True


def enqueue_revision(
    conn: Connection,
    *,
    revision_id: int,
    kind: str,
    run_at: datetime,
    priority: int,
    now: datetime,
) -> int:
    """One job for every pending delivery of a revision that has none, in one INSERT ... SELECT.

    This is how a dispatch of 26,000 SMS recipients becomes 26,000 jobs without 26,000 rows
    travelling from Python to the database. A delivery the dispatch created cancelled (its
    recipient opted out) gets none. Returns how many jobs were added.
    """
    source = select(
        literal(kind),
        deliveries.c.id,
        deliveries.c.target,
        literal(priority),
        literal(str(JobState.QUEUED)),
        literal(run_at, UtcDateTime()),
        literal(0),
        literal(now, UtcDateTime()),
        literal(now, UtcDateTime()),
    ).where(deliveries.c.revision_id == revision_id, deliveries.c.state == DeliveryState.PENDING)
    columns = ["kind", "delivery_id", "target", "priority", "state", "run_at", "attempts"]
    # A delivery that has a job already is skipped by the unique delivery_id, not by a NOT
    # EXISTS: on tables the planner has no statistics for yet (a fresh database, the rows just
    # inserted in this transaction) PostgreSQL ran that anti-join as a nested loop over the jobs
    # being inserted, and 26,000 jobs took 10 s instead of 0.3 s.
    statement = _insert_jobs(conn).from_select([*columns, "created_at", "updated_at"], source)
    return int(conn.execute(statement.on_conflict_do_nothing()).rowcount)


def _insert_jobs(conn: Connection) -> Any:
    """An INSERT into jobs in ``conn``'s dialect, which can skip rows that break a constraint."""
    # Imported here: loading the PostgreSQL dialect eagerly slows every SQLite command.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(jobs)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(jobs)


def claim(
    conn: Connection,
    *,
    owner: str,
    wants: Mapping[str | None, int],
    limit: int,
    lease: timedelta,
    now: datetime,
    others: int = 0,
    expired: bool = True,
    exclude_ids: Collection[int] = (),
) -> list[Job]:
    """Lease the most urgent due jobs, at most ``wants[target]`` per target (None: no target).

    A job is due when it is queued and its time has come, or (when ``expired``) when it is
    running under a lease that expired: its worker went silent. Jobs of targets not in ``wants``
    (removed from the configuration) are taken up to ``others`` in all; looking for them scans
    the queue, so the worker asks only now and then. ``exclude_ids`` are jobs this worker still
    holds: it never claims its own running job again, whatever the clock says. At most ``limit``
    jobs in all, the most urgent of the candidates (priority, then age), returned in that order.
    """
    room = dict(wants)
    chosen: list[tuple[int, int, datetime, bool]] = []
    other_room = others
    lapsed = _expired(conn, now, sum(room.values()) + others, exclude_ids) if expired else []
    for job_id, target, priority, run_at in lapsed:
        if room.get(target, 0) > 0:
            room[target] -= 1
        elif target not in room and other_room > 0:
            other_room -= 1
        else:
            continue
        chosen.append((priority, job_id, run_at, True))
    for target, count in room.items():
        if count > 0:
            chosen += [(p, i, r, False) for i, p, r in _due(conn, now, count, target)]
    if other_room > 0:
        query = _due_elsewhere(conn, now, other_room, [t for t in wants if t is not None])
        chosen += [(p, i, r, False) for i, p, r in query]
    chosen = sorted(chosen, key=lambda c: (c[0], c[2], c[1]))[:limit]
    if not chosen:
        return []
    return _lease(conn, owner, chosen, now + lease, now)


# The claim's statements are built once: building them per call (coercing every id of an IN
# list) cost more than running them.
_NOW = bindparam("now", type_=UtcDateTime())
_EXPIRED = (
    select(jobs.c.id, jobs.c.target, jobs.c.priority, jobs.c.run_at)
    .where(jobs.c.state == JobState.RUNNING, jobs.c.lease_until < _NOW)
    .order_by(jobs.c.lease_until)
    .limit(bindparam("limit"))
)
_EXPIRED_EXCEPT = _EXPIRED.where(jobs.c.id.not_in(bindparam("mine", expanding=True)))
_DUE_ORDER = (jobs.c.priority, jobs.c.run_at, jobs.c.id)
_DUE = (
    select(jobs.c.id, jobs.c.priority, jobs.c.run_at)
    .where(jobs.c.state == JobState.QUEUED, jobs.c.run_at <= _NOW)
    .order_by(*_DUE_ORDER)
    .limit(bindparam("limit"))
)
_DUE_FOR = _DUE.where(jobs.c.target == bindparam("target"))
_DUE_UNTARGETED = _DUE.where(jobs.c.target.is_(None))
_LEASE = (
    update(jobs)
    .where(jobs.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=JobState.RUNNING,
        lease_owner=bindparam("owner"),
        lease_until=bindparam("until", type_=UtcDateTime()),
        attempts=jobs.c.attempts + 1,
        # SET expressions see the row as it was: a running job here had an expired lease.
        reclaims=jobs.c.reclaims + case((jobs.c.state == JobState.RUNNING, 1), else_=0),
        updated_at=_NOW,
    )
    .returning(
        jobs.c.id,
        jobs.c.kind,
        jobs.c.delivery_id,
        jobs.c.target,
        jobs.c.priority,
        jobs.c.attempts,
        jobs.c.reclaims,
        jobs.c.failures,
        jobs.c.run_at,
        jobs.c.announcement_id,
    )
)


def _expired(
    conn: Connection, now: datetime, limit: int, exclude_ids: Collection[int]
) -> list[Any]:
    if limit <= 0:
        return []
    query = _EXPIRED_EXCEPT if exclude_ids else _EXPIRED
    params = {"now": now, "limit": limit, "mine": list(exclude_ids)}
    return list(conn.execute(_skip_locked(conn, query), params).all())


def _due(conn: Connection, now: datetime, limit: int, target: str | None) -> list[Any]:
    """Queued, due jobs of one target, most urgent first: one index range scan."""
    query = _DUE_UNTARGETED if target is None else _DUE_FOR
    params = {"now": now, "limit": limit, "target": target}
    return list(conn.execute(_skip_locked(conn, query), params).all())


def _due_elsewhere(conn: Connection, now: datetime, limit: int, known: list[str]) -> list[Any]:
    """Queued, due jobs of targets not in ``known`` (this scans the due jobs)."""
    query = _DUE.where(jobs.c.target.is_not(None))
    if known:
        query = query.where(jobs.c.target.not_in(known))
    return list(conn.execute(_skip_locked(conn, query), {"now": now, "limit": limit}).all())


def _skip_locked(conn: Connection, query: Any) -> Any:
    if conn.dialect.name == "postgresql":
        # Other workers skip the rows this one is claiming instead of waiting for them.
        return query.with_for_update(skip_locked=True)
    return query  # SQLite: the write transaction (BEGIN IMMEDIATE) already excludes them


def _lease(
    conn: Connection,
    owner: str,
    chosen: list[tuple[int, int, datetime, bool]],
    lease_until: datetime,
    now: datetime,
) -> list[Job]:
    reclaimed = {job_id for _, job_id, _, was_expired in chosen if was_expired}
    params = {"ids": [c[1] for c in chosen], "owner": owner, "until": lease_until, "now": now}
    claimed = [
        Job(
            id=row.id,
            kind=row.kind,
            delivery_id=row.delivery_id,
            target=row.target,
            priority=row.priority,
            attempts=row.attempts,
            reclaims=row.reclaims,
            failures=row.failures,
            run_at=row.run_at,
            reclaimed=row.id in reclaimed,
            announcement_id=row.announcement_id,
        )
        for row in conn.execute(_LEASE, params)
    ]
    return sorted(claimed, key=lambda job: (job.priority, job.run_at, job.id))


def renew(
    conn: Connection, owner: str, job_ids: Collection[int], lease: timedelta, now: datetime
) -> set[int]:
    """Extend the leases ``owner`` still holds among ``job_ids``; returns those ids.

    A lease that expired is renewed too, as long as nobody took the job over meanwhile.
    """
    renewed: set[int] = set()
    for chunk in chunked(list(job_ids)):
        renewed.update(
            conn.execute(
                update(jobs)
                .where(
                    jobs.c.id.in_(chunk),
                    jobs.c.lease_owner == owner,
                    jobs.c.state == JobState.RUNNING,
                )
                .values(lease_until=now + lease)
                .returning(jobs.c.id)
            ).scalars()
        )
    return renewed


_SETTLE = (
    update(jobs)
    .where(
        jobs.c.id == bindparam("b_id"),
        jobs.c.lease_owner == bindparam("b_owner"),
        jobs.c.state == JobState.RUNNING,
    )
    .values(
        state=bindparam("b_state"),
        lease_owner=None,
        lease_until=None,
        run_at=func.coalesce(bindparam("b_run_at", type_=UtcDateTime()), jobs.c.run_at),
        last_error=bindparam("b_error"),
        attempts=jobs.c.attempts - bindparam("b_undo"),
        failures=jobs.c.failures + bindparam("b_failed"),
        updated_at=bindparam("b_now", type_=UtcDateTime()),
    )
)


def settle_jobs(
    conn: Connection, owner: str, settlements: Sequence[Settlement], now: datetime
) -> int:
    """Write the job rows of many settlements; returns how many leases were still ``owner``'s.

    One executemany per outcome kind: a settlement whose lease was lost (another worker took the
    job over) matches no row and changes nothing.
    """
    if not settlements:
        return 0
    rows = [
        {
            "b_id": s.job_id,
            "b_owner": owner,
            "b_now": now,
            "b_state": s.state,
            "b_run_at": now + timedelta(seconds=s.delay) if s.state == JobState.QUEUED else None,
            # A handler's own failure (a bug) is stored as its exception's text, which may
            # quote a recipient: masked here, like every error broadcaster stores.
            "b_error": None if s.error is None else mask_phone_numbers(s.error),
            "b_undo": 0 if s.attempted else 1,
            "b_failed": 1 if s.failed else 0,
        }
        for s in settlements
    ]
    written = conn.execute(_SETTLE, rows).rowcount
    if written < len(rows):
        log.warning(
            "%d job(s) were taken over by another worker; their new owner decides",
            len(rows) - written,
        )
    return written


def release(
    conn: Connection,
    job_ids: Collection[int],
    owner: str,
    now: datetime,
    *,
    run_at: datetime | None = None,
) -> int:
    """Give claimed jobs back untouched (a worker shutting down); returns how many.

    ``run_at`` holds them back a little (an interrupted call may still be landing).
    """
    released = 0
    for chunk in chunked(list(job_ids)):
        released += conn.execute(
            update(jobs)
            .where(
                jobs.c.id.in_(chunk), jobs.c.lease_owner == owner, jobs.c.state == JobState.RUNNING
            )
            .values(
                state=JobState.QUEUED,
                lease_owner=None,
                lease_until=None,
                run_at=run_at or now,
                attempts=jobs.c.attempts - 1,
                updated_at=now,
            )
        ).rowcount
    return released


def requeue(conn: Connection, delivery_ids: Collection[int], now: datetime) -> set[int]:
    """Queue the jobs of these deliveries afresh (a person retried them); returns the delivery
    ids that had a job, so the caller can enqueue the others."""
    found: set[int] = set()
    for chunk in chunked(list(delivery_ids)):
        found.update(
            conn.execute(
                update(jobs)
                .where(jobs.c.delivery_id.in_(chunk))
                .values(
                    state=JobState.QUEUED,
                    run_at=now,
                    attempts=0,
                    reclaims=0,
                    failures=0,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
                .returning(jobs.c.delivery_id)
            ).scalars()
        )
    return found


# A job that no worker has touched: still queued, never run, never claimed and given back by a
# lapsed lease. Taking back or moving a scheduled send touches only these, so a delivery that a
# worker holds (or held) is never half-cancelled. A claim that a rate limit deferred is given
# back with its attempt undone; nothing was sent, so it counts as untouched too.
_UNSTARTED = and_(
    jobs.c.state == JobState.QUEUED,
    jobs.c.attempts == 0,
    jobs.c.reclaims == 0,
    jobs.c.lease_owner.is_(None),
)


def _of_revision(revision_id: int) -> Any:
    return jobs.c.delivery_id.in_(
        select(deliveries.c.id).where(deliveries.c.revision_id == revision_id)
    )


def withdraw_unstarted(conn: Connection, revision_id: int) -> tuple[int, int]:
    """Delete the revision's untouched jobs; returns (deleted, how many jobs it had).

    When the two differ, some job already ran or is running: the caller rolls back. On
    PostgreSQL the DELETE waits for a worker claiming these rows at the same moment and then
    sees the claim, so the count is exact; on SQLite the write transaction excludes workers.
    """
    total = conn.execute(
        select(func.count()).select_from(jobs).where(_of_revision(revision_id))
    ).scalar_one()
    deleted = conn.execute(delete(jobs).where(_of_revision(revision_id), _UNSTARTED)).rowcount
    return int(deleted), int(total)


def move_unstarted(
    conn: Connection, revision_id: int, run_at: datetime, now: datetime
) -> tuple[int, int]:
    """Give the revision's untouched jobs a new time; returns (moved, how many jobs it had).

    As with :func:`withdraw_unstarted`, the caller rolls back when the two differ.
    """
    total = conn.execute(
        select(func.count()).select_from(jobs).where(_of_revision(revision_id))
    ).scalar_one()
    moved = conn.execute(
        update(jobs)
        .where(_of_revision(revision_id), _UNSTARTED)
        .values(run_at=run_at, updated_at=now)
    ).rowcount
    return int(moved), int(total)


def unstarted_runs(conn: Connection, revision_ids: Collection[int]) -> dict[int, datetime]:
    """For each revision whose every job is untouched, the time its jobs are due.

    A revision with a job that ran, or with no jobs at all, is left out: it is being (or was)
    sent, not waiting for its time.
    """
    untouched = case((_UNSTARTED, 1), else_=0)
    found: dict[int, datetime] = {}
    for chunk in chunked(list(revision_ids)):
        rows = conn.execute(
            select(
                deliveries.c.revision_id,
                func.min(jobs.c.run_at, type_=UtcDateTime),
                func.count(),
                func.sum(untouched),
            )
            .join(deliveries, deliveries.c.id == jobs.c.delivery_id)
            .where(deliveries.c.revision_id.in_(chunk))
            .group_by(deliveries.c.revision_id)
        )
        found.update({row[0]: row[1] for row in rows if row[2] == row[3]})
    return found


def started_deliveries(conn: Connection, revision_id: int) -> dict[tuple[str, str], int]:
    """What a worker has touched of a revision: (target, state) -> how many deliveries.

    The state is the delivery's, or ``claimed`` for a job a worker holds that has not yet
    marked its delivery as sending.
    """
    rows = conn.execute(
        select(deliveries.c.target, deliveries.c.state, func.count())
        .join(jobs, jobs.c.delivery_id == deliveries.c.id)
        .where(deliveries.c.revision_id == revision_id, ~_UNSTARTED)
        .group_by(deliveries.c.target, deliveries.c.state)
        .order_by(deliveries.c.target, deliveries.c.state)
    )
    return {
        (target, "claimed" if state == "pending" else state): int(count)
        for target, state, count in rows
    }


@dataclass(frozen=True, kw_only=True)
class QueueActivity:
    """What the job table says about workers, for people watching it (``status --follow``)."""

    #: Queued jobs whose time has come.
    due: int
    #: The earliest run time among them (None: nothing is due).
    oldest_due: datetime | None
    #: Jobs held under a lease that has not lapsed: some worker is on them.
    running: int
    #: The last time any job was enqueued, claimed, settled or released.
    last_change: datetime | None

    def unattended(self, now: datetime, silence: timedelta) -> bool:
        """True when jobs have been due for ``silence`` and no worker touched any meanwhile.

        A running worker claims due jobs within a poll interval, so this long a silence means
        nobody is working (or every worker is stuck): what a person watching should be told.
        """
        if self.due == 0 or self.running or self.oldest_due is None:
            return False
        quiet_since = max(self.oldest_due, self.last_change or self.oldest_due)
        return now - quiet_since >= silence


def activity(conn: Connection, now: datetime) -> QueueActivity:
    """Due and running jobs, and the last change to any job, as of ``now``."""
    due, oldest = conn.execute(
        select(func.count(), func.min(jobs.c.run_at)).where(
            jobs.c.state == JobState.QUEUED, jobs.c.run_at <= now
        )
    ).one()
    running = conn.execute(
        select(func.count()).where(jobs.c.state == JobState.RUNNING, jobs.c.lease_until >= now)
    ).scalar_one()
    last_change = conn.execute(select(func.max(jobs.c.updated_at))).scalar_one()
    # MIN and MAX keep the column's type, so the values come back timezone-aware.
    return QueueActivity(
        due=int(due), oldest_due=oldest, running=int(running), last_change=last_change
    )


def oldest_due(conn: Connection, now: datetime) -> datetime | None:
    """The run time of the longest-waiting queued job that is due (None: nothing is due).

    One indexed probe (``ix_jobs_state_run_at``): cheap enough for a health check every second.
    """
    oldest = conn.execute(
        select(func.min(jobs.c.run_at)).where(jobs.c.state == JobState.QUEUED, jobs.c.run_at <= now)
    ).scalar_one()
    return oldest if isinstance(oldest, datetime) else None


@dataclass(frozen=True, kw_only=True)
class QueueDepth:
    """How much work the job table holds (``/metrics``)."""

    #: Jobs waiting to run, due or not (a retry's backoff, a scheduled send).
    queued: int
    #: Queued jobs whose time has come.
    due: int
    #: Jobs a worker has claimed and not settled.
    running: int
    #: The earliest run time among the due jobs (None: nothing is due).
    oldest_due: datetime | None


def depth(conn: Connection, now: datetime) -> QueueDepth:
    """Queued, due and running jobs as of ``now``: two range scans of ``ix_jobs_state_run_at``
    (done and dead jobs, the bulk of the table, are not read)."""
    queued, due, oldest = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((jobs.c.run_at <= now, 1), else_=0)), 0),
            func.min(case((jobs.c.run_at <= now, jobs.c.run_at))),
        ).where(jobs.c.state == JobState.QUEUED)
    ).one()
    running = conn.execute(
        select(func.count()).where(jobs.c.state == JobState.RUNNING)
    ).scalar_one()
    return QueueDepth(
        queued=int(queued),
        due=int(due),
        running=int(running),
        oldest_due=oldest if isinstance(oldest, datetime) else None,
    )


@dataclass(frozen=True, kw_only=True)
class DeadJob:
    """A job about a whole announcement that was given up on (``deadletters``)."""

    id: int
    announcement_id: int
    attempts: int
    last_error: str | None
    dead_since: datetime


def dead_announcement_jobs(conn: Connection, kind: str) -> list[DeadJob]:
    """Dead jobs of ``kind`` not followed by a newer job of theirs, oldest first.

    A job of this kind is about its announcement as it stands (an approval card): only the
    newest one of each announcement matters, and a dead one is news only while no later job
    (queued by the next decision, or by hand) took over.
    """
    newer = jobs.alias("newer")
    rows = conn.execute(
        select(
            jobs.c.id, jobs.c.announcement_id, jobs.c.attempts, jobs.c.last_error, jobs.c.updated_at
        )
        .where(
            jobs.c.kind == kind,
            jobs.c.state == JobState.DEAD,
            jobs.c.announcement_id.is_not(None),
            ~select(newer.c.id)
            .where(
                newer.c.kind == kind,
                newer.c.announcement_id == jobs.c.announcement_id,
                newer.c.id > jobs.c.id,
            )
            .exists(),
        )
        .order_by(jobs.c.updated_at, jobs.c.id)
    ).all()
    return [
        DeadJob(
            id=row.id,
            announcement_id=row.announcement_id,
            attempts=row.attempts,
            last_error=row.last_error,
            dead_since=row.updated_at,
        )
        for row in rows
    ]
