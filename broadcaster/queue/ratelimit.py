"""Rate limits that hold across every worker (owner of ``rate_slots``): reserved send slots.

Each limited key (``target:fb-borgholm``, ``channel:telegram``) has a row with the next free
moment. A worker about to send reserves the next slot (``max(now, next_at)``) and moves the row
one interval on, inside one short transaction, then waits until its slot. So N workers on N
machines together keep to the limit, and a platform's own "slow down" (a 429 with
``Retry-After``) pushes the key's next slot out for every worker at once.

Many sends reserve in one transaction (:func:`reserve_many`), in the order asked. Slots are
returned as waits from the queue clock's ``now``, so a worker sleeps for a duration on its own
monotonic clock and never compares the database's time with its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from broadcaster.store.schema import rate_slots
from broadcaster.store.sql import insert_or_ignore

__all__ = ["RateKey", "Slot", "push_back", "reserve_many"]

RateKey = tuple[str, float]  # (key, sends per second)


@dataclass(frozen=True, slots=True)
class Slot:
    """The first free moment under every limit (as seconds from now), and whether it is taken.

    A slot further away than the caller's ``max_wait`` is only reported (``reserved=False``): the
    caller must not send at it, but come back then instead of holding a job that long.
    """

    wait: float
    reserved: bool


def reserve_many(
    conn: Connection,
    requests: Sequence[Sequence[RateKey]],
    now: datetime,
    max_wait: timedelta,
) -> list[Slot]:
    """Reserve one slot per request (each a set of limits that must all allow it), in order."""
    keys = {key for request in requests for key, _ in request}
    next_at = {key: _locked_next_at(conn, key, now) for key in sorted(keys)}
    moved: set[str] = set()
    slots = []
    for request in requests:
        start = max([now, *(next_at[key] for key, _ in request)])
        if start - now > max_wait:
            slots.append(Slot(wait=(start - now).total_seconds(), reserved=False))
            continue
        for key, per_second in request:
            next_at[key] = start + timedelta(seconds=1 / per_second)
            moved.add(key)
        slots.append(Slot(wait=(start - now).total_seconds(), reserved=True))
    for key in sorted(moved):
        conn.execute(update(rate_slots).where(rate_slots.c.key == key).values(next_at=next_at[key]))
    return slots


def push_back(conn: Connection, key: str, until: datetime) -> None:
    """Nobody sends on ``key`` before ``until`` (the platform asked us to slow down)."""
    current = _locked_next_at(conn, key, until)
    if current < until:
        conn.execute(update(rate_slots).where(rate_slots.c.key == key).values(next_at=until))


def _locked_next_at(conn: Connection, key: str, now: datetime) -> datetime:
    insert_or_ignore(conn, rate_slots, {"key": key, "next_at": now})
    query = select(rate_slots.c.next_at).where(rate_slots.c.key == key)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    next_at: datetime = conn.execute(query).scalar_one()
    return next_at
