"""A blocking database read for a route: in a thread, one at a time, waited for a bounded time.

``/healthz`` and ``/metrics`` are asked every few seconds by machines that do not care whether
the last answer came. A database that hangs must neither hang those requests (they answer 503
after the timeout) nor collect a stuck thread per request: the worker needs those threads. So
a read still running when the next request comes is shared by it instead of started again.
The log says once when the database stops answering, and once when it answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BoundedRead"]

T = TypeVar("T")

log = logging.getLogger("broadcaster.server")


class BoundedRead(Generic[T]):
    """Runs ``read`` in a thread; callers wait at most ``limit`` seconds for its result."""

    def __init__(self, read: Callable[[], T], what: str) -> None:
        """``what`` names the reader in the log (``health check``, ``metrics``)."""
        self._read = read
        self._what = what
        self._running: asyncio.Future[T] | None = None
        self._failing = False

    async def __call__(self, limit: float) -> T:
        """The result of the read in flight, or of a new one.

        Raises:
            TimeoutError: It did not finish within ``limit`` seconds (it goes on, and the
                next caller waits for it).
            Exception: Whatever the read raised.
        """
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(asyncio.to_thread(self._read))
            # Its failure is reported to whoever awaits it; one that ends after every waiter
            # gave up must not be logged as "exception never retrieved".
            self._running.add_done_callback(_retrieve)
        try:
            result = await asyncio.wait_for(asyncio.shield(self._running), limit)
        except Exception as exc:  # any failure to answer is "unavailable", whatever its kind
            if not self._failing:
                reason = str(getattr(exc, "orig", None) or exc or type(exc).__name__)
                log.warning("%s: the database does not answer: %s", self._what, reason.strip())
            self._failing = True
            raise
        if self._failing:
            log.warning("%s: the database answers again", self._what)
        self._failing = False
        return result


def _retrieve(done: asyncio.Future[T]) -> None:
    if not done.cancelled():
        done.exception()
