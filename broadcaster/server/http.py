"""HTTP plumbing shared by every route: JSON errors, the body size limit, no leaked tracebacks.

Every answer that is not a route's own is ``{"error": "..."}`` with its status: 404 for unknown
routes, 405 for a wrong method, 413 for a body over the limit, and 500 ``internal error`` for a
bug, whose traceback goes to the log (phone numbers masked there) and never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BodyLimit",
    "BodyTooLarge",
    "CatchAll",
    "error_response",
    "exception_handlers",
]

log = logging.getLogger("broadcaster.server")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """``{"error": message}`` with ``status``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class BodyTooLarge(Exception):
    """The request body is larger than the server accepts."""


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, however they are sent.

    A declared ``Content-Length`` over the limit is refused before the route runs; a body sent
    in chunks is counted as the route reads it, and reading past the limit raises
    :class:`BodyTooLarge` in the route (answered with 413 by :func:`exception_handlers`).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        await self.app(scope, counted, send)


class CatchAll:
    """Answers 500 ``internal error`` for any exception a route lets through, and logs it.

    Starlette's own last-resort handler re-raises after answering, which hands the traceback to
    the server's logger, outside our phone-number masking; this one stops it here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("internal error answering %s %s", scope["method"], scope["path"])
            if not started:
                await error_response(500, "internal error")(scope, receive, send)


def exception_handlers(limit: int) -> dict[Any, Any]:
    """Starlette's handlers for what routes raise on purpose: HTTP errors and large bodies."""

    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, exc.detail)
        return error_response(exc.status_code, message, exc.headers)

    async def body_too_large(request: Request, exc: Exception) -> Response:
        return _too_large(limit)

    return {HTTPException: http_error, BodyTooLarge: body_too_large}


def _too_large(limit: int) -> Response:
    return error_response(413, f"request body larger than {limit} bytes")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
