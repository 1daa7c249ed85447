"""The queue's clock: whose time leases, run times and rate slots are measured in.

Workers on several machines share one PostgreSQL database, and their clocks drift: a worker whose
clock runs ten minutes fast would see every other worker's lease as expired and take it over.
So on PostgreSQL the queue takes the database's time: it asks the server now and then, and in
between carries that answer forward on this machine's monotonic clock (which a wrong or jumping
wall clock does not move), saving a round trip in every transaction. SQLite serves one machine,
whose clock every worker shares.
Local waits (a rate slot, a lease's deadline) are measured as durations on the monotonic clock,
never by comparing a database time with the local one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from broadcaster.timeutil import Clock, utcnow

__all__ = ["DatabaseClock", "QueueClock", "local_clock"]

QueueClock = Callable[[Connection], datetime]


class DatabaseClock:
    """The database server's time, asked for every ``refresh`` seconds (PostgreSQL).

    One per worker process: the anchor it keeps is that process's view of the server's time.
    Between questions the answer moves on with ``time.monotonic``; its drift over ``refresh``
    seconds is microseconds, far below a lease's margin.
    """

    def __init__(self, refresh: float = 10.0) -> None:
        self.refresh = refresh
        self._anchor: tuple[datetime, float] | None = None  # server time, monotonic then

    def __call__(self, conn: Connection) -> datetime:
        if conn.dialect.name != "postgresql":
            return utcnow()
        anchor, now = self._anchor, time.monotonic()
        if anchor is None or now - anchor[1] >= self.refresh:
            # clock_timestamp(), not now(): the moment of asking, not the transaction's start.
            moment: datetime = conn.execute(select(func.clock_timestamp())).scalar_one()
            self._anchor = (moment, time.monotonic())  # one assignment: safe across threads
            return moment
        return anchor[0] + timedelta(seconds=now - anchor[1])


def local_clock(clock: Clock) -> QueueClock:
    """A queue clock that reads ``clock`` (tests and simulations move it by hand)."""

    def read(_conn: Connection) -> datetime:
        return clock()

    return read
