"""What both Teams adapters need around httpx: one client per event loop, Retry-After, outcomes.

Whether a failed request may have posted decides what the queue does next (DESIGN §7): a request
that never reached the service is retried; one whose answer was lost may have posted, and is an
unknown outcome unless repeating it is harmless (an edit, a delete).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import httpx

from broadcaster.errors import ChannelError, TransientError, UnknownOutcome

__all__ = ["LoopClient", "network_error", "retry_after"]

#: Errors raised before any byte of the request reached the service: nothing was posted.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class LoopClient:
    """An ``httpx.AsyncClient`` for the running event loop, built on first use.

    A client's connections belong to the loop that opened them; an adapter used from two loops
    (``check --online``, then a worker, in tests) gets one client per loop instead of a broken
    pool.
    """

    def __init__(self, transport: Any, timeout: float) -> None:
        self._transport = transport
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self) -> httpx.AsyncClient:
        """The client for the running loop."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A client left by a loop that has ended cannot be closed from this one; its
            # connections went with that loop, so it is dropped.
            self._loop = loop
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the client of this loop, if any."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the ``Retry-After`` header asks for (a number or an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def network_error(
    channel: str, exc: httpx.HTTPError, what: str, *, repeatable: bool
) -> ChannelError:
    """The outcome of a request that got no answer.

    Args:
        channel: The channel's name, for the error.
        exc: What httpx raised.
        what: The request in words (``posting the card``), never its URL: a Workflows URL is a
            secret.
        repeatable: True when doing the request twice does no harm (an edit, a delete).
    """
    reason = type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return TransientError(channel, f"could not connect for {what} ({reason}); nothing was sent")
    if repeatable:
        return TransientError(channel, f"no answer to {what} ({reason}); it will be repeated")
    return UnknownOutcome(
        channel, f"no answer to {what} ({reason}); the service may have posted it"
    )
