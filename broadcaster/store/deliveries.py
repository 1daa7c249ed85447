"""Deliveries: one per target (or per SMS recipient) of a dispatched revision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from broadcaster.errors import NotFoundError
from broadcaster.model import DeliveryState
from broadcaster.store.schema import UtcDateTime, deliveries
from broadcaster.store.sql import inserted_id

__all__ = [
    "Delivery",
    "create_delivery",
    "deliveries_for",
    "failed_targets",
    "first_delivery_time",
    "get_delivery",
    "has_unfinished",
    "state_counts",
    "update_delivery",
]


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


def create_delivery(
    conn: Connection,
    *,
    announcement_id: int,
    revision_id: int,
    target: str,
    channel: str,
    now: datetime,
    recipient: str = "",
) -> int:
    """Insert a pending delivery; returns its id."""
    return inserted_id(
        conn.execute(
            deliveries.insert().values(
                announcement_id=announcement_id,
                revision_id=revision_id,
                target=target,
                channel=channel,
                recipient=recipient,
                state=DeliveryState.PENDING,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
    )


def get_delivery(conn: Connection, delivery_id: int) -> Delivery:
    """One delivery by id."""
    row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
    if row is None:
        raise NotFoundError(f"there is no delivery {delivery_id}")
    return _delivery(row)


def deliveries_for(
    conn: Connection, announcement_id: int, revision_id: int | None = None
) -> list[Delivery]:
    """The deliveries of an announcement (optionally of one revision), in creation order."""
    query = select(deliveries).where(deliveries.c.announcement_id == announcement_id)
    if revision_id is not None:
        query = query.where(deliveries.c.revision_id == revision_id)
    return [_delivery(row) for row in conn.execute(query.order_by(deliveries.c.id))]


_UNFINISHED = (
    DeliveryState.PENDING,
    DeliveryState.SENDING,
    DeliveryState.RETRYING,
    DeliveryState.UNKNOWN,
)


def has_unfinished(conn: Connection, revision_id: int) -> bool:
    """True while any delivery of the revision may still change (an indexed probe)."""
    probe = select(deliveries.c.id).where(
        deliveries.c.revision_id == revision_id, deliveries.c.state.in_(_UNFINISHED)
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
    """Targets with at least one delivery of the revision that was not sent, sorted."""
    rows = conn.execute(
        select(deliveries.c.target)
        .where(deliveries.c.revision_id == revision_id, deliveries.c.state != DeliveryState.SENT)
        .distinct()
    )
    return sorted(rows.scalars())


def first_delivery_time(conn: Connection, announcement_id: int, target: str) -> datetime:
    """When an announcement was first dispatched to a target (its "published" time there)."""
    first = conn.execute(
        select(func.min(deliveries.c.created_at, type_=UtcDateTime)).where(
            deliveries.c.announcement_id == announcement_id, deliveries.c.target == target
        )
    ).scalar_one()
    if not isinstance(first, datetime):
        raise NotFoundError(f"announcement {announcement_id} was never sent to {target}")
    return first


def update_delivery(
    conn: Connection,
    delivery_id: int,
    now: datetime,
    *,
    expected: tuple[DeliveryState, ...] | None = None,
    **values: Any,
) -> bool:
    """Update columns of a delivery; with ``expected``, only if its state is one of those."""
    statement = update(deliveries).where(deliveries.c.id == delivery_id)
    if expected is not None:
        statement = statement.where(deliveries.c.state.in_(expected))
    return conn.execute(statement.values(updated_at=now, **values)).rowcount == 1


def _delivery(row: Row[Any]) -> Delivery:
    values = dict(row._mapping)
    values["state"] = DeliveryState(values["state"])
    return Delivery(**values)
