"""The queue's clock: whose time leases, run times and rate slots are measured in.

Workers on several machines share one PostgreSQL database, and their clocks drift: a worker whose
clock runs ten minutes fast would see every other worker's lease as expired and take it over.
So on PostgreSQL the queue asks the database for the time (the transaction's start, the same
moment for every statement in it). SQLite serves one machine, whose clock every worker shares.
Local waits (a rate slot, a lease's deadline) are measured as durations on the monotonic clock,
never by comparing a database time with the local one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, func, select

from broadcaster.timeutil import Clock, utcnow

__all__ = ["QueueClock", "database_clock", "local_clock"]

QueueClock = Callable[[Connection], datetime]


def database_clock(conn: Connection) -> datetime:
    """The database server's time on PostgreSQL; this machine's on SQLite."""
    if conn.dialect.name == "postgresql":
        moment: datetime = conn.execute(select(func.now())).scalar_one()
        return moment
    return utcnow()


def local_clock(clock: Clock) -> QueueClock:
    """A queue clock that reads ``clock`` (tests and simulations move it by hand)."""

    def read(_conn: Connection) -> datetime:
        return clock()

    return read
