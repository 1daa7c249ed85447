"""A worker's own view of one lease (owner of nothing in the database): how long it may still act.

The database's ``lease_until`` is what other workers go by. Locally the worker keeps a
conservative copy on its monotonic clock: the moment it *asked* for the lease (claim or renewal)
plus the lease's length, which is never later than the database's. Platform calls run under a
:meth:`Lease.deadline` that ends a safety margin before that moment and moves out each time the
lease is renewed: a call may take as long as its worker keeps the lease alive, but never outlives
a lease that another worker could take over. A call cut off by the deadline raises
``TimeoutError``; the caller records that as an unknown outcome, verified before any resend.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

__all__ = ["Deadline", "Lease"]


class Lease:
    """One held job's lease, as this worker knows it."""

    def __init__(self, expires_at: float, margin: float) -> None:
        #: On the event loop's (monotonic) clock.
        self.expires_at = expires_at
        self.margin = margin
        #: Set when a renewal found that another worker took the job over.
        self.lost = False
        self._deadlines: dict[asyncio.Timeout, float] = {}

    def remaining(self) -> float:
        """Seconds this worker may still act on the job (negative once it may not)."""
        if self.lost:
            return -math.inf
        return self.expires_at - self.margin - asyncio.get_running_loop().time()

    def extend(self, expires_at: float) -> None:
        """The lease was renewed: move it, and every running deadline with it."""
        self.expires_at = max(self.expires_at, expires_at)
        for timeout, cap in self._deadlines.items():
            if not timeout.expired():
                timeout.reschedule(min(cap, self.expires_at - self.margin))

    def lose(self) -> None:
        """Another worker holds the job now: stop at the next await."""
        self.lost = True
        loop_time = asyncio.get_running_loop().time()
        for timeout in self._deadlines:
            if not timeout.expired():
                timeout.reschedule(loop_time)

    def deadline(self, seconds: float | None = None) -> Deadline:
        """An async context that runs its body until it ends, ``seconds`` pass, or the lease
        would lapse; raises ``TimeoutError`` when cut off."""
        return Deadline(self, seconds)


class Deadline:
    """``async with lease.deadline(s):`` — an ``asyncio.Timeout`` that follows the lease.

    A class rather than a generator-based context manager: it runs once per platform call,
    thousands of times a second.
    """

    def __init__(self, lease: Lease, seconds: float | None) -> None:
        self.lease = lease
        self.seconds = seconds
        self._timeout = asyncio.timeout_at(None)

    async def __aenter__(self) -> None:
        lease = self.lease
        now = asyncio.get_running_loop().time()
        cap = now + self.seconds if self.seconds is not None else math.inf
        await self._timeout.__aenter__()
        self._timeout.reschedule(now if lease.lost else min(cap, lease.expires_at - lease.margin))
        lease._deadlines[self._timeout] = cap

    async def __aexit__(self, *exc_info: Any) -> None:
        del self.lease._deadlines[self._timeout]
        await self._timeout.__aexit__(*exc_info)
