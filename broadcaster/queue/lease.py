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
import contextlib
import math
from collections.abc import AsyncIterator

__all__ = ["Lease"]


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

    @contextlib.asynccontextmanager
    async def deadline(self, seconds: float | None = None) -> AsyncIterator[None]:
        """Run the body until it ends, ``seconds`` pass, or the lease would lapse.

        Raises ``TimeoutError`` when cut off.
        """
        now = asyncio.get_running_loop().time()
        cap = now + seconds if seconds is not None else math.inf
        end = now if self.lost else min(cap, self.expires_at - self.margin)
        async with asyncio.timeout(end) as timeout:
            self._deadlines[timeout] = cap
            try:
                yield
            finally:
                del self._deadlines[timeout]
