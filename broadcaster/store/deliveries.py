"""Deliveries (owner of ``deliveries``): one per target, or per SMS recipient, of a revision.

Every write of an outcome is tied to the attempt that made it: it names the delivery's attempt
number and the states it expects to find, so a late result is still recorded while nothing newer
has happened, and a stale worker can never overwrite a newer attempt.

The opt-out list (owned by :mod:`broadcaster.store.recipients`, read here in subqueries) always
wins: a delivery to an opted-out number is created ``cancelled`` at dispatch, and one whose
number was opted out since is cancelled by :func:`mark_sending` instead of being sent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)

from broadcaster.errors import NotFoundError
from broadcaster.model import CancelReason, DeliveryState, Receipt
from broadcaster.privacy import mask_phone_numbers
from broadcaster.store.recipients import member_numbers, on_opt_out_list
from broadcaster.store.schema import UtcDateTime, deliveries, jobs, revisions
from broadcaster.store.sql import chunked

__all__ = [
    "PLATFORM_STATUS_RANK",
    "PURGED_PREFIX",
    "RECIPIENT_OUTCOMES",
    "UNFINISHED",
    "Created",
    "Delivery",
    "DeliveryUpdate",
    "ListDeliveries",
    "Marked",
    "NewDelivery",
    "PlatformStatus",
    "RecipientGroup",
    "announcement_state_counts",
    "create_deliveries",
    "dead_letters",
    "delete_pending",
    "deliveries_for",
    "failed_recipients",
    "failed_targets",
    "first_delivery_times",
    "get_deliveries",
    "has_unfinished",
    "mark_sending",
    "opted_out_count",
    "platform_status_applies",
    "previous_receipts",
    "purge_recipients",
    "recipient_groups",
    "record_platform_status",
    "record_platform_statuses",
    "record_updates",
    "requeue_dead",
    "revisions_of",
    "state_counts",
    "target_deliveries",
    "unfinished_recipients",
]


#: States in which the queue may still change a delivery.
UNFINISHED = (
    DeliveryState.PENDING,
    DeliveryState.SENDING,
    DeliveryState.RETRYING,
    DeliveryState.UNKNOWN,
)


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One delivery and what is known about it."""

    id: int
    announcement_id: int
    revision_id: int
    target: str
    channel: str
    recipient: str
    state: DeliveryState
    attempts: int
    platform_id: str | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    #: When the channel's maximum age starts counting (None: from created_at).
    age_from: datetime | None = None
    #: The rest of the receipt (:attr:`Receipt.data`), once sent.
    receipt_data: Mapping[str, str | int] | None = None
    #: Why it was cancelled unsent (``opted_out``), else None.
    cancel_reason: str | None = None
    #: What the platform reported after sending (SMS: delivered / undelivered / failed ...),
    #: with its error code and when; None until a status callback arrives.
    platform_status: str | None = None
    platform_error: int | None = None
    platform_status_at: datetime | None = None

    @property
    def receipt(self) -> Receipt | None:
        """What the platform answered when it took the delivery (None: not sent yet)."""
        if self.platform_id is None:
            return None
        return Receipt(self.platform_id, dict(self.receipt_data or {}))


@dataclass(frozen=True, kw_only=True)
class NewDelivery:
    """A delivery to create at dispatch: a target, and for per-recipient channels a recipient."""

    target: str
    channel: str
    recipient: str = ""


@dataclass(frozen=True, kw_only=True)
class ListDeliveries:
    """Deliveries to create at dispatch for every member of a recipient list, in the database:
    one per member, in import order, the member's number as the recipient."""

    target: str
    channel: str
    list_id: int


@dataclass(frozen=True, kw_only=True)
class DeliveryUpdate:
    """A new state for one delivery, written only if it is still as the writer last saw it."""

    delivery_id: int
    #: The states the delivery must be in for this to apply ...
    expected: tuple[DeliveryState, ...]
    #: ... and its attempt number (None: any), so an older attempt never overwrites a newer one.
    attempt: int | None
    state: DeliveryState
    platform_id: str | None = None
    #: The receipt's data, written with ``platform_id`` (never a secret: it is stored as is).
    receipt_data: Mapping[str, str | int] | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    #: Why the delivery is cancelled unsent (with ``state`` cancelled), else None.
    cancel_reason: CancelReason | None = None


@dataclass(frozen=True)
class Created:
    """What :func:`create_deliveries` wrote: deliveries in all, and how many went in cancelled
    because their recipient is on the opt-out list."""

    deliveries: int
    opted_out: int


@dataclass(frozen=True)
class Marked:
    """What :func:`mark_sending` did: the new attempt number of each delivery to send now, and
    the deliveries it cancelled instead because their recipient has opted out since dispatch."""

    attempts: dict[int, int]
    opted_out: list[int]


# A delivery whose recipient opted out (at dispatch or later): cancelled, and no failure.
_OPTED_OUT = and_(
    deliveries.c.state == DeliveryState.CANCELLED,
    func.coalesce(deliveries.c.cancel_reason, "") == CancelReason.OPTED_OUT,
)


def create_deliveries(
    conn: Connection,
    *,
    announcement_id: int,
    revision_id: int,
    rows: Sequence[NewDelivery | ListDeliveries],
    now: datetime,
) -> Created:
    """Insert a revision's deliveries with set-based statements, in the order of ``rows``;
    returns how many.

    A :class:`NewDelivery` is one row; a :class:`ListDeliveries` is one row per member of its
    list, made by an INSERT ... SELECT from the list, so the numbers are not read into Python.
    Every row is created, also for a recipient on the opt-out list: that one is ``cancelled``
    (``opted_out``), so the status can count it, and gets no job (the queue enqueues only
    pending deliveries). One UPDATE against the opt-out table finds them, however long the
    list: the numbers are not read back into Python either.
    """
    created = 0
    for batch in _runs(rows):
        if isinstance(batch, ListDeliveries):
            created += _insert_list(conn, batch, announcement_id, revision_id, now)
            continue
        conn.execute(
            deliveries.insert(),
            [
                {
                    "announcement_id": announcement_id,
                    "revision_id": revision_id,
                    "target": row.target,
                    "channel": row.channel,
                    "recipient": row.recipient,
                    "state": DeliveryState.PENDING,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for row in batch
            ],
        )
        created += len(batch)
    opted = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.revision_id == revision_id,
            deliveries.c.state == DeliveryState.PENDING,
            on_opt_out_list(deliveries.c.recipient),
        )
        .values(state=DeliveryState.CANCELLED, cancel_reason=CancelReason.OPTED_OUT)
    ).rowcount
    return Created(deliveries=created, opted_out=int(opted or 0))


def _runs(
    rows: Sequence[NewDelivery | ListDeliveries],
) -> list[list[NewDelivery] | ListDeliveries]:
    """``rows`` with each stretch of single rows gathered into one list (one executemany)."""
    runs: list[list[NewDelivery] | ListDeliveries] = []
    for row in rows:
        if isinstance(row, ListDeliveries):
            runs.append(row)
        elif runs and isinstance(runs[-1], list):
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _insert_list(
    conn: Connection, source: ListDeliveries, announcement_id: int, revision_id: int, now: datetime
) -> int:
    """One pending delivery per member of ``source``'s list, by one INSERT ... SELECT."""
    # The members' own SELECT, its ORDER BY included, so the ids follow the import order.
    select_rows = member_numbers(source.list_id).add_columns(
        literal(announcement_id),
        literal(revision_id),
        literal(source.target),
        literal(source.channel),
        literal(str(DeliveryState.PENDING)),
        literal(0),
        literal(now, UtcDateTime()),
        literal(now, UtcDateTime()),
    )
    columns = ["recipient", "announcement_id", "revision_id", "target", "channel", "state"]
    statement = deliveries.insert().from_select(
        [*columns, "attempts", "created_at", "updated_at"], select_rows
    )
    # Without preserve_rowcount SQLAlchemy 2.1 reports -1 for an INSERT ... SELECT on psycopg.
    return int(conn.execute(statement.execution_options(preserve_rowcount=True)).rowcount)


# The worker's statements are built once: building them per call cost more than running them.
_BY_IDS = select(deliveries).where(deliveries.c.id.in_(bindparam("ids", expanding=True)))


def delete_pending(conn: Connection, revision_id: int) -> tuple[int, int]:
    """Delete the revision's unstarted deliveries: pending ones with no job, and the ones the
    dispatch created cancelled for opted-out recipients (a send taken back).

    Returns (deleted, how many deliveries the revision had); the caller deletes the jobs first
    and rolls back when the two differ.
    """
    total = conn.execute(
        select(func.count()).select_from(deliveries).where(deliveries.c.revision_id == revision_id)
    ).scalar_one()
    has_job = exists().where(jobs.c.delivery_id == deliveries.c.id)
    deleted = conn.execute(
        deliveries.delete().where(
            deliveries.c.revision_id == revision_id,
            or_(deliveries.c.state == DeliveryState.PENDING, _OPTED_OUT),
            ~has_job,
        )
    ).rowcount
    return int(deleted), int(total)


def get_deliveries(conn: Connection, delivery_ids: Collection[int]) -> dict[int, Delivery]:
    """Deliveries by id (missing ids are left out)."""
    found: dict[int, Delivery] = {}
    for chunk in chunked(list(delivery_ids)):
        found.update((row.id, _delivery(row)) for row in conn.execute(_BY_IDS, {"ids": chunk}))
    return found


def deliveries_for(
    conn: Connection, announcement_id: int, revision_id: int | None = None
) -> list[Delivery]:
    """The deliveries of an announcement (optionally of one revision), in creation order."""
    query = select(deliveries).where(deliveries.c.announcement_id == announcement_id)
    if revision_id is not None:
        query = query.where(deliveries.c.revision_id == revision_id)
    return [_delivery(row) for row in conn.execute(query.order_by(deliveries.c.id))]


def has_unfinished(conn: Connection, revision_id: int) -> bool:
    """True while any delivery of the revision may still change (an indexed probe)."""
    probe = select(deliveries.c.id).where(
        deliveries.c.revision_id == revision_id, deliveries.c.state.in_(UNFINISHED)
    )
    return conn.execute(probe.limit(1)).first() is not None


def state_counts(conn: Connection, revision_id: int) -> dict[DeliveryState, int]:
    """How many deliveries of the revision are in each state."""
    rows = conn.execute(
        select(deliveries.c.state, func.count())
        .where(deliveries.c.revision_id == revision_id)
        .group_by(deliveries.c.state)
    )
    return {DeliveryState(state): int(count) for state, count in rows}


def failed_targets(conn: Connection, revision_id: int) -> list[str]:
    """Targets with at least one delivery of the revision that was not sent, sorted.

    A delivery cancelled because its recipient opted out is no failure: that person asked for
    no messages, and the announcement reached everyone it should.
    """
    rows = conn.execute(
        select(deliveries.c.target)
        .where(
            deliveries.c.revision_id == revision_id,
            deliveries.c.state != DeliveryState.SENT,
            ~_OPTED_OUT,
        )
        .distinct()
    )
    return sorted(rows.scalars())


def opted_out_count(conn: Connection, revision_id: int) -> int:
    """How many deliveries of the revision were cancelled because their recipient opted out."""
    query = select(func.count()).where(deliveries.c.revision_id == revision_id, _OPTED_OUT)
    return int(conn.execute(query.select_from(deliveries)).scalar_one())


def first_delivery_times(
    conn: Connection, pairs: Collection[tuple[int, str]]
) -> dict[tuple[int, str], datetime]:
    """When each (announcement, target) was first dispatched: its "published" time there."""
    found: dict[tuple[int, str], datetime] = {}
    for announcement_id, target in pairs:
        first = conn.execute(
            select(func.min(deliveries.c.created_at, type_=UtcDateTime)).where(
                deliveries.c.announcement_id == announcement_id, deliveries.c.target == target
            )
        ).scalar_one()
        if not isinstance(first, datetime):
            raise NotFoundError(f"announcement {announcement_id} was never sent to {target}")
        found[(announcement_id, target)] = first
    return found


def previous_receipts(
    conn: Connection, wanted: Collection[tuple[int, str, str, int]]
) -> dict[tuple[int, str, str, int], Receipt]:
    """What earlier revisions left on each platform, for the deliveries of a later one.

    ``wanted`` holds (announcement id, target, recipient, revision number); the answer maps each
    to the receipt of the newest *sent* delivery of an earlier revision of that announcement to
    that target and recipient — what a correction edits or a retraction deletes. Keys with no
    such delivery are left out. One query per chunk of recipients, however many are wanted.
    """
    if not wanted:
        return {}
    announcement_ids = sorted({w[0] for w in wanted})
    targets = sorted({w[1] for w in wanted})
    newest: dict[tuple[int, str, str], list[tuple[int, Receipt]]] = {}
    for chunk in chunked(sorted({w[2] for w in wanted})):
        query = (
            select(
                deliveries.c.announcement_id,
                deliveries.c.target,
                deliveries.c.recipient,
                deliveries.c.platform_id,
                deliveries.c.receipt_data,
                revisions.c.number,
            )
            .join(revisions, revisions.c.id == deliveries.c.revision_id)
            .where(
                deliveries.c.announcement_id.in_(announcement_ids),
                deliveries.c.target.in_(targets),
                deliveries.c.recipient.in_(chunk),
                deliveries.c.state == DeliveryState.SENT,
                deliveries.c.platform_id.is_not(None),
            )
        )
        for row in conn.execute(query):
            data = json.loads(row.receipt_data) if row.receipt_data else {}
            key = (row.announcement_id, row.target, row.recipient)
            newest.setdefault(key, []).append((row.number, Receipt(row.platform_id, data)))
    found: dict[tuple[int, str, str, int], Receipt] = {}
    for announcement_id, target, recipient, number in wanted:
        earlier = [
            sent
            for sent in newest.get((announcement_id, target, recipient), ())
            if sent[0] < number
        ]
        if earlier:
            found[(announcement_id, target, recipient, number)] = max(
                earlier, key=lambda sent: sent[0]
            )[1]
    return found


def revisions_of(conn: Connection, delivery_ids: Collection[int]) -> set[tuple[int, int]]:
    """The (announcement id, revision id) pairs these deliveries belong to."""
    pairs: set[tuple[int, int]] = set()
    for chunk in chunked(list(delivery_ids)):
        query = select(deliveries.c.announcement_id, deliveries.c.revision_id).where(
            deliveries.c.id.in_(chunk)
        )
        pairs.update((row[0], row[1]) for row in conn.execute(query.distinct()))
    return pairs


def mark_sending(
    conn: Connection,
    delivery_ids: Sequence[int],
    *,
    expected: tuple[DeliveryState, ...],
    lease_owner: str,
    now: datetime,
) -> Marked:
    """Mark deliveries ``sending`` before their platform call; returns their attempt numbers.

    Only deliveries in an ``expected`` state whose job ``lease_owner`` still holds under a live
    lease are marked: a worker that was stopped (or cut off) while another took its job over finds
    its delivery missing from the answer, and must not send.

    In the same statement, those whose recipient is on the opt-out list by now are cancelled
    (``opted_out``) instead, and get no attempt: the list always wins, also for a number opted
    out after the dispatch. One statement, so one snapshot of the list: each delivery it touches
    comes out either sending or cancelled.
    """
    attempts: dict[int, int] = {}
    opted: list[int] = []
    for chunk in chunked(list(delivery_ids)):
        params = {"ids": chunk, "expected": list(expected), "owner": lease_owner, "now": now}
        for row in conn.execute(_MARK, params):
            if row.state == DeliveryState.CANCELLED:
                opted.append(row.id)
            else:
                attempts[row.id] = row.attempts
    return Marked(attempts=attempts, opted_out=opted)


# Probed by primary key for each row of the batch, inside the mark itself: a separate cancel
# UPDATE before it cost a second statement in every mark transaction, the worker's hot path.
_LISTED = on_opt_out_list(deliveries.c.recipient)

_MARK = (
    update(deliveries)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)),
        deliveries.c.state.in_(bindparam("expected", expanding=True)),
        exists().where(
            jobs.c.delivery_id == deliveries.c.id,
            jobs.c.lease_owner == bindparam("owner"),
            jobs.c.state == "running",  # queue.JobState.RUNNING (the store does not import queue)
            jobs.c.lease_until > bindparam("now", type_=UtcDateTime()),
        ),
    )
    .values(
        state=case((_LISTED, DeliveryState.CANCELLED), else_=DeliveryState.SENDING),
        cancel_reason=case((_LISTED, CancelReason.OPTED_OUT), else_=None),
        attempts=case((_LISTED, deliveries.c.attempts), else_=deliveries.c.attempts + 1),
        next_attempt_at=None,
        updated_at=bindparam("now", type_=UtcDateTime()),
    )
    .returning(deliveries.c.id, deliveries.c.state, deliveries.c.attempts)
)


def record_updates(conn: Connection, updates: Sequence[DeliveryUpdate], now: datetime) -> None:
    """Write many outcomes, each only if its delivery is still in an expected state and attempt.

    One executemany per kind of condition, so a batch of thousands costs a few statements.
    """
    groups: dict[tuple[tuple[DeliveryState, ...], bool], list[dict[str, Any]]] = {}
    for item in updates:
        key = (item.expected, item.attempt is not None)
        groups.setdefault(key, []).append(
            {
                "b_id": item.delivery_id,
                "b_attempt": item.attempt,
                "b_state": item.state,
                "b_platform_id": item.platform_id,
                "b_receipt_data": _receipt_json(item),
                "b_sent_at": now if item.state == DeliveryState.SENT else None,
                # Whoever built the update, no phone number is stored in an error text.
                "b_error": None if item.error is None else mask_phone_numbers(item.error),
                "b_next_at": item.next_attempt_at,
                "b_cancel_reason": item.cancel_reason,
            }
        )
    for (expected, tied), rows in groups.items():
        if not tied:
            for row in rows:
                del row["b_attempt"]
        for row in rows:
            row["b_now"] = now
        conn.execute(_outcome_statement(expected, tied), rows)


@functools.cache
def _outcome_statement(expected: tuple[DeliveryState, ...], tied: bool) -> Any:
    """The executemany UPDATE for outcomes that expect these states (and an attempt number)."""
    # Plain comparisons, not IN: an expanding IN list cannot be used with executemany.
    in_expected = or_(*(deliveries.c.state == state for state in expected))
    condition = and_(deliveries.c.id == bindparam("b_id"), in_expected)
    if tied:
        condition = and_(condition, deliveries.c.attempts == bindparam("b_attempt"))
    return (
        update(deliveries)
        .where(condition)
        .values(
            state=bindparam("b_state"),
            platform_id=func.coalesce(bindparam("b_platform_id"), deliveries.c.platform_id),
            receipt_data=func.coalesce(bindparam("b_receipt_data"), deliveries.c.receipt_data),
            sent_at=func.coalesce(bindparam("b_sent_at", type_=UtcDateTime), deliveries.c.sent_at),
            last_error=bindparam("b_error"),
            next_attempt_at=bindparam("b_next_at", type_=UtcDateTime),
            cancel_reason=bindparam("b_cancel_reason"),
            updated_at=bindparam("b_now", type_=UtcDateTime),
        )
    )


#: How far along each status a platform reports after sending is (Twilio's message statuses).
#: A status is recorded only over one of lower rank: callbacks arrive out of order (``sent``
#: after ``delivered``), and a delivery never moves backwards. The final statuses share the top
#: rank, so the first final status to arrive stays (Twilio sends only one).
PLATFORM_STATUS_RANK: Mapping[str, int] = {
    "accepted": 1,  # with a Messaging Service: taken, the sender not chosen yet
    "queued": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,  # handed to the carrier
    "delivered": 4,
    "undelivered": 4,  # the carrier could not deliver it (ErrorCode says why)
    "failed": 4,  # never left Twilio (ErrorCode says why)
    "read": 4,
    "canceled": 4,
}

_STORED_RANK = case(PLATFORM_STATUS_RANK, value=deliveries.c.platform_status, else_=0)
_PLATFORM_STATUS = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("b_id"),
        bindparam("b_rank") > _STORED_RANK,
        # A message of another attempt (or someone else's) says nothing about this delivery; while
        # its id is not stored yet (the callback overtook the worker's write), the status counts.
        or_(deliveries.c.platform_id.is_(None), deliveries.c.platform_id == bindparam("b_sid")),
    )
    .values(
        platform_status=bindparam("b_status"),
        platform_error=bindparam("b_error"),
        platform_status_at=bindparam("b_at", type_=UtcDateTime()),
    )
)


@dataclass(frozen=True, kw_only=True)
class PlatformStatus:
    """What a platform reported, after sending, about the message of one delivery."""

    delivery_id: int
    #: The platform's id of the message the report is about (Twilio's MessageSid).
    sid: str
    #: One of :data:`PLATFORM_STATUS_RANK`.
    status: str
    error_code: int | None = None


def platform_status_applies(delivery: Delivery, report: PlatformStatus) -> bool:
    """True when recording ``report`` would change ``delivery`` (the rule the UPDATE applies).

    It does when the status ranks above the stored one and the report is about the delivery's
    own message (or no message id is stored yet).

    Raises:
        ValueError: the status is not one of :data:`PLATFORM_STATUS_RANK`.
    """
    stored = PLATFORM_STATUS_RANK.get(delivery.platform_status or "", 0)
    same_message = delivery.platform_id is None or delivery.platform_id == report.sid
    return _rank(report.status) > stored and same_message


def record_platform_status(
    conn: Connection,
    delivery_id: int,
    sid: str,
    status: str,
    error_code: int | None,
    at: datetime,
) -> bool:
    """Record what the platform reported about a sent message; False when it was ignored.

    Ignored: an unknown delivery, a status that does not rank above the stored one (see
    :data:`PLATFORM_STATUS_RANK`), or ``sid`` differing from the delivery's stored platform id.
    The delivery's own state (the queue's) is not touched.

    Raises:
        ValueError: ``status`` is not one of :data:`PLATFORM_STATUS_RANK`.
    """
    report = PlatformStatus(delivery_id=delivery_id, sid=sid, status=status, error_code=error_code)
    return bool(conn.execute(_PLATFORM_STATUS, _status_params(report, at)).rowcount)


def record_platform_statuses(
    conn: Connection, reports: Sequence[PlatformStatus], at: datetime
) -> None:
    """Record many reports with one executemany, in order, each under the same rule as
    :func:`record_platform_status` (decide which apply with :func:`platform_status_applies`).

    Raises:
        ValueError: a status is not one of :data:`PLATFORM_STATUS_RANK`.
    """
    if reports:
        conn.execute(_PLATFORM_STATUS, [_status_params(report, at) for report in reports])


def _rank(status: str) -> int:
    rank = PLATFORM_STATUS_RANK.get(status)
    if rank is None:
        raise ValueError(f"unknown platform status {status!r}")
    return rank


def _status_params(report: PlatformStatus, at: datetime) -> dict[str, Any]:
    return {
        "b_id": report.delivery_id,
        "b_rank": _rank(report.status),
        "b_sid": report.sid,
        "b_status": report.status,
        "b_error": report.error_code,
        "b_at": at,
    }


def dead_letters(conn: Connection) -> list[Row[Any]]:
    """Dead deliveries with their revision's title, oldest first (not purged ones: they can
    never be sent again)."""
    query = (
        select(deliveries, revisions.c.title)
        .join(revisions, revisions.c.id == deliveries.c.revision_id)
        .where(deliveries.c.state == DeliveryState.DEAD, ~_PURGED)
        .order_by(deliveries.c.updated_at, deliveries.c.id)
    )
    return list(conn.execute(query).all())


def requeue_dead(
    conn: Connection, delivery_ids: Collection[int] | None, now: datetime
) -> list[Delivery]:
    """Make dead deliveries pending again (all when ``delivery_ids`` is None); returns them.

    Attempts and the maximum-age window start afresh: a person decided it is worth trying.
    """
    # A purged delivery has lost its number: nobody can be sent it again.
    query = select(deliveries).where(deliveries.c.state == DeliveryState.DEAD, ~_PURGED)
    if delivery_ids is not None:
        query = query.where(deliveries.c.id.in_(list(delivery_ids)))
    found = [_delivery(row) for row in conn.execute(query.order_by(deliveries.c.id))]
    for chunk in chunked([d.id for d in found]):
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(chunk), deliveries.c.state == DeliveryState.DEAD)
            .values(
                state=DeliveryState.PENDING,
                attempts=0,
                age_from=now,
                next_attempt_at=now,
                updated_at=now,
            )
        )
    return found


# ---------------------------------------------------------------------------------------------
# Per-recipient targets (SMS lists): progress counts, failed recipients, and the purge of numbers

#: What ``status`` counts per list. Every delivery of a per-recipient target falls in exactly
#: one, so a list's counts add up to its recipients (see :func:`recipient_groups`).
RECIPIENT_OUTCOMES = ("sent", "delivered", "failed", "pending", "opted_out", "cancelled")

#: The recipient a purge writes over a number: ``purged:<delivery id>``, unique per delivery, so
#: the row keeps its place under the (revision, target, recipient) constraint.
PURGED_PREFIX = "purged:"

#: What the platform reports (Twilio status callbacks) about a text that never reached the phone.
_UNDELIVERED = ("undelivered", "failed")
_FINAL = (DeliveryState.SENT, DeliveryState.DEAD, DeliveryState.CANCELLED)

_STATE = deliveries.c.state
_SENT = _STATE == DeliveryState.SENT
_FAILED = or_(
    _STATE == DeliveryState.DEAD,
    and_(_SENT, deliveries.c.platform_status.in_(_UNDELIVERED)),
)
# The partition, in order: the first condition that holds names the outcome. A NULL
# platform_status (no report from the handset yet) compares as unknown, so it falls through.
_OUTCOME = case(
    (_OPTED_OUT, "opted_out"),
    (_STATE == DeliveryState.CANCELLED, "cancelled"),
    (_FAILED, "failed"),
    (and_(_SENT, deliveries.c.platform_status == "delivered"), "delivered"),
    (_SENT, "sent"),
    else_="pending",
)
_HAS_RECIPIENT = deliveries.c.recipient != ""
_PURGED = deliveries.c.recipient.startswith(PURGED_PREFIX)


@dataclass(frozen=True, kw_only=True)
class RecipientGroup:
    """How many deliveries of one per-recipient target and revision share a state and outcome."""

    revision_id: int
    target: str
    channel: str
    state: DeliveryState
    #: One of :data:`RECIPIENT_OUTCOMES`.
    outcome: str
    count: int
    #: The group's first delivery (creation order, for sorting it among the others).
    first_id: int
    max_attempts: int
    next_attempt_at: datetime | None
    last_sent_at: datetime | None


def recipient_groups(conn: Connection, announcement_id: int) -> list[RecipientGroup]:
    """The announcement's per-recipient deliveries counted by revision, target, state, outcome.

    One grouped query, however long the lists: a few rows per target come back, never one per
    recipient. The outcome partitions the deliveries (each is in exactly one):

    * ``opted_out``: cancelled because the recipient is on the opt-out list;
    * ``cancelled``: cancelled for any other reason;
    * ``failed``: dead, or sent and then reported ``undelivered`` or ``failed`` by the platform;
    * ``delivered``: sent, and the platform reported it delivered to the handset;
    * ``sent``: sent (the platform accepted it), with no report from the handset yet;
    * ``pending``: not finished: pending, sending, retrying or unknown.
    """
    inner = (
        select(
            deliveries.c.id,
            deliveries.c.revision_id,
            deliveries.c.target,
            deliveries.c.channel,
            deliveries.c.state,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            deliveries.c.sent_at,
            _OUTCOME.label("outcome"),
        )
        .where(deliveries.c.announcement_id == announcement_id, _HAS_RECIPIENT)
        .subquery()
    )
    # Grouped over a subquery: PostgreSQL would not see the CASE in the select list and in the
    # GROUP BY as one expression, as each carries its own bound parameters.
    keys = (inner.c.revision_id, inner.c.target, inner.c.channel, inner.c.state, inner.c.outcome)
    query = select(
        *keys,
        func.count().label("n"),
        func.min(inner.c.id).label("first_id"),
        func.max(inner.c.attempts).label("max_attempts"),
        func.min(inner.c.next_attempt_at, type_=UtcDateTime).label("next_attempt_at"),
        func.max(inner.c.sent_at, type_=UtcDateTime).label("last_sent_at"),
    ).group_by(*keys)
    return [
        RecipientGroup(
            revision_id=row.revision_id,
            target=row.target,
            channel=row.channel,
            state=DeliveryState(row.state),
            outcome=row.outcome,
            count=int(row.n),
            first_id=int(row.first_id),
            max_attempts=int(row.max_attempts),
            next_attempt_at=row.next_attempt_at,
            last_sent_at=row.last_sent_at,
        )
        for row in conn.execute(query)
    ]


def target_deliveries(conn: Connection, announcement_id: int) -> list[Delivery]:
    """The announcement's one-per-target deliveries (those without a recipient), by creation."""
    query = select(deliveries).where(
        deliveries.c.announcement_id == announcement_id, deliveries.c.recipient == ""
    )
    return [_delivery(row) for row in conn.execute(query.order_by(deliveries.c.id))]


def announcement_state_counts(
    conn: Connection, announcement_ids: Collection[int]
) -> dict[int, dict[str, int]]:
    """How many deliveries (of every revision) each announcement has in each state."""
    counts: dict[int, dict[str, int]] = {}
    for chunk in chunked(list(announcement_ids)):
        query = (
            select(deliveries.c.announcement_id, deliveries.c.state, func.count())
            .where(deliveries.c.announcement_id.in_(chunk))
            .group_by(deliveries.c.announcement_id, deliveries.c.state)
        )
        for announcement_id, state, count in conn.execute(query):
            counts.setdefault(announcement_id, {})[str(state)] = int(count)
    return counts


def failed_recipients(conn: Connection, revision_id: int, target: str) -> list[Delivery]:
    """The revision's deliveries to ``target``'s recipients that failed (the ``failed``
    outcome of :func:`recipient_groups`), in creation order."""
    query = select(deliveries).where(
        deliveries.c.revision_id == revision_id,
        deliveries.c.target == target,
        _HAS_RECIPIENT,
        _FAILED,
    )
    return [_delivery(row) for row in conn.execute(query.order_by(deliveries.c.id))]


def purge_recipients(conn: Connection, *, dispatched_before: datetime) -> int:
    """Write a placeholder over the number of every finished per-recipient delivery dispatched
    before ``dispatched_before``; returns how many were purged.

    A delivery is created in its revision's dispatch, so its ``created_at`` is when that
    revision was dispatched. Only final deliveries (sent, dead, cancelled) are purged: one the
    queue may still send keeps its number. The row itself stays, with its state, platform id
    and times, so the announcement's history and its counts do not change. The receipt's data
    goes too: a per-recipient receipt may quote the number, and no text on a phone can be
    edited later anyway. One UPDATE, whatever the number of rows.
    """
    placeholder = literal(PURGED_PREFIX) + cast(deliveries.c.id, String)
    result = conn.execute(
        update(deliveries)
        .where(
            _HAS_RECIPIENT,
            ~_PURGED,
            deliveries.c.state.in_(_FINAL),
            deliveries.c.created_at < dispatched_before,
        )
        .values(recipient=placeholder, receipt_data=None)
    )
    return int(result.rowcount)


def unfinished_recipients(conn: Connection, *, dispatched_before: datetime) -> int:
    """How many per-recipient deliveries dispatched before then are not final (and so keep
    their number through a purge)."""
    query = select(func.count()).where(
        _HAS_RECIPIENT,
        deliveries.c.state.in_(UNFINISHED),
        deliveries.c.created_at < dispatched_before,
    )
    return int(conn.execute(query.select_from(deliveries)).scalar_one())


def _receipt_json(item: DeliveryUpdate) -> str | None:
    """The receipt's data as stored: JSON text, written only together with a platform id."""
    if item.platform_id is None:
        return None
    return json.dumps(dict(item.receipt_data or {}), sort_keys=True, ensure_ascii=False)


def _delivery(row: Row[Any]) -> Delivery:
    values = dict(row._mapping)
    values["state"] = DeliveryState(values["state"])
    stored = values.get("receipt_data")
    values["receipt_data"] = json.loads(stored) if stored else None
    return Delivery(**values)
