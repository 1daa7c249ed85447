"""twilio's aiohttp client, with a deadline on every request and the answers the adapter reads.

The SDK's :class:`AsyncTwilioHttpClient` ignores its own ``timeout`` and hands aiohttp
``timeout=None``, which aiohttp reads as "wait for ever" (PLATFORMS §2). This subclass of it —
the SDK's documented extension point, ``Client(http_client=...)`` — sends every request with an
aiohttp ``ClientTimeout`` and keeps what the SDK drops:

* ``Retry-After``: an error answer that carries one is raised here as :class:`WaitRequested`, a
  :class:`TwilioRestException` with the seconds (the SDK's own exception has no headers).
* Whether the request left: failing to get a connection (refused, DNS, connect timeout, the pool
  full) raises :class:`NotSent`, so the adapter knows nothing reached Twilio. Anything after
  that (a read timeout, a dropped connection) may have reached it.

The aiohttp session is made on the first request, inside the event loop that uses it, and closed
by :meth:`close`. The SDK's request logging is switched off: it writes query strings (a lookup's
``To``) at INFO, and the adapter logs what a person needs itself.
"""

from __future__ import annotations

import base64
import json
from typing import Any, cast
from urllib.parse import quote_plus, urlencode

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response

#: Form values this long (a text's body) are encoded once and remembered ...
_REMEMBERED_LENGTH = 40
#: ... this many of them, per client.
_REMEMBERED_VALUES = 32

__all__ = ["NotSent", "TimedTwilioHttpClient", "WaitRequested", "error_answer"]


class NotSent(TwilioException):  # type: ignore[misc]  # twilio is untyped
    """No connection to Twilio could be made: the request was not sent."""


class WaitRequested(TwilioRestException):  # type: ignore[misc]
    """An error answer with ``Retry-After``: Twilio's code and message, and the seconds."""

    def __init__(
        self, status: int, uri: str, msg: str, code: int, method: str, retry_after: float
    ) -> None:
        super().__init__(status, uri, msg, code, method)
        self.retry_after = retry_after


class TimedTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """An :class:`AsyncTwilioHttpClient` whose requests end within their deadline."""

    def __init__(self, *, connect_timeout: float, read_timeout: float) -> None:
        # pool_connections=False: the SDK would make its session here, outside any loop.
        super().__init__(pool_connections=False)
        self.timeout = read_timeout
        # connect: getting a connection (from the pool or a new one); sock_read: the answer,
        # after the request was written; total: both, as a last resort.
        self._deadline = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout,
            connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._session: aiohttp.ClientSession | None = None
        self._quoted: dict[str, str] = {}

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """Nothing: see the module docstring."""

    def log_response(self, status_code: int, response: Any) -> None:
        """Nothing: see the module docstring."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature; ignored
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request as the SDK's client does, within the client's deadline."""
        session = self._session_now()
        try:
            answer = await session.request(
                method.upper(),
                url,
                params=cast(Any, params),
                data=None if data is None else self._form(data),
                headers=_with_auth(headers, auth, form=data is not None),
                timeout=self._deadline,
                allow_redirects=allow_redirects,
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise NotSent(f"cannot connect to Twilio: {type(exc).__name__}: {exc}") from exc
        async with answer:
            text = await answer.text()
        retry_after = _seconds(answer.headers.get("Retry-After"))
        if answer.status >= 400 and retry_after is not None:
            code, message = _error(text, answer.status)
            raise WaitRequested(answer.status, url, message, code, method.upper(), retry_after)
        return Response(answer.status, text, answer.headers)

    def _form(self, data: dict[str, object]) -> bytes:
        """The form body, encoded as aiohttp would (``urlencode`` with ``doseq``).

        Encoded here because a fan-out posts one text to thousands of numbers: the text is
        percent-encoded once and remembered, where aiohttp would encode it character by
        character for every recipient (a sixth of a worker's CPU time per message).
        """
        # (typeshed spells quote_via as an overloaded protocol that a method cannot match)
        return urlencode(data, doseq=True, quote_via=cast(Any, self._quote)).encode("ascii")

    def _quote(
        self,
        value: str | bytes,
        safe: str = "",
        encoding: str | None = None,
        errors: str | None = None,
    ) -> str:
        """``quote_plus``, remembered for long text values (``urlencode``'s ``quote_via``)."""
        if isinstance(value, bytes):
            return quote_plus(value, safe)
        if len(value) < _REMEMBERED_LENGTH:  # numbers: different every time
            return quote_plus(value, safe, encoding, errors)
        quoted = self._quoted.get(value)
        if quoted is None:
            if len(self._quoted) >= _REMEMBERED_VALUES:
                self._quoted.clear()
            quoted = self._quoted[value] = quote_plus(value, safe, encoding, errors)
        return quoted

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No limit of its own on connections: the worker bounds the sends in flight.
            connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        """Close the session and its connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _with_auth(
    headers: dict[str, str] | None, auth: tuple[str, str] | None, *, form: bool = False
) -> dict[str, str]:
    """The headers with HTTP Basic auth (aiohttp 3.14 deprecates its ``BasicAuth``), and the
    form's content type when the body is one."""
    merged = dict(headers or {})
    if form:
        merged.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if auth is not None:
        pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        merged["Authorization"] = f"Basic {pair}"
    return merged


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (Twilio sends a number), or None."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_answer(exc: TwilioException) -> tuple[int, int, str] | None:
    """(status, code, message) of the error answer a list or fetch raised.

    Paging raises a bare ``TwilioException("Unable to fetch page", response)`` instead of a
    :class:`TwilioRestException`; the answer is its second argument.
    """
    response = exc.args[1] if len(exc.args) == 2 else None
    if not isinstance(response, Response):
        return None
    code, message = _error(str(response.text), int(response.status_code))
    return int(response.status_code), code, f"{exc.args[0]}: {message}"


def _error(text: str, status: int) -> tuple[int, str]:
    """Twilio's ``code`` and ``message`` from an error body; the status when there is none."""
    try:
        body = json.loads(text)
    except ValueError:
        return status, f"HTTP {status}"
    if not isinstance(body, dict):
        return status, f"HTTP {status}"
    code = body.get("code")
    return (code if isinstance(code, int) else status), str(body.get("message") or status)
