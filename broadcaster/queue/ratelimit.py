"""Rate limits that hold across every worker: reserved send slots in the database.

Each limited key (``target:fb-borgholm``, ``channel:telegram``) has a row with the next free
moment. A worker about to send reserves the next slot (``max(now, next_at)``) and moves the row
one interval on, all inside one short transaction, then waits until its slot. So N workers on
N machines together keep to the limit, and a platform's own "slow down" (a 429 with
``Retry-After``) pushes the key's next slot out for every worker at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from broadcaster.store.schema import rate_slots
from broadcaster.store.sql import insert_or_ignore

__all__ = ["RateKey", "Slot", "push_back", "reserve"]

RateKey = tuple[str, float]  # (key, sends per second)


@dataclass(frozen=True, slots=True)
class Slot:
    """The first free moment under every limit, and whether it is now the caller's."""

    at: datetime
    reserved: bool


def reserve(conn: Connection, keys: Sequence[RateKey], now: datetime, max_wait: timedelta) -> Slot:
    """Take the next free slot under every limit in ``keys``, if it is within ``max_wait``.

    A slot further away is only reported (``reserved=False``): the caller must not send at it,
    but come back then instead of holding a job that long. The answer is explicit because the
    caller's own clock moves on after this returns, so it cannot re-derive the decision.
    """
    rows = {key: _locked_next_at(conn, key, now) for key, _ in keys}
    start = max([now, *rows.values()])
    if start - now > max_wait:
        return Slot(at=start, reserved=False)
    for key, per_second in keys:
        interval = timedelta(seconds=1 / per_second)
        conn.execute(
            update(rate_slots).where(rate_slots.c.key == key).values(next_at=start + interval)
        )
    return Slot(at=start, reserved=True)


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
