"""The Starlette application of ``broadcaster serve``, built from one module per route family.

A new family (e.g. the Bot Framework's ``/api/messages``) is a module with a
``routes(context) -> list[BaseRoute]`` function, added to :data:`ROUTE_FAMILIES`; what it must
release at shutdown it hands to :meth:`ServerContext.on_close`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from broadcaster.app import App
from broadcaster.server import bot_messages, health, metrics, refusals, twilio_status
from broadcaster.server.card_actions import ApprovalCardActions, Wakeable
from broadcaster.server.context import DEFAULT_MAX_BODY_BYTES, ServerContext, WorkerProbe
from broadcaster.server.http import BodyLimit, CatchAll, exception_handlers

__all__ = ["ROUTE_FAMILIES", "create_app"]

#: Every family of routes the server answers.
ROUTE_FAMILIES: tuple[Callable[[ServerContext], list[BaseRoute]], ...] = (
    health.routes,
    twilio_status.routes,
    bot_messages.routes,
    metrics.routes,
)


def create_app(
    app: App,
    *,
    worker: WorkerProbe | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """The ASGI application for one workspace.

    Args:
        app: The workspace's context (database, configuration, clock).
        worker: The queue worker running in this process, for ``/healthz``; None when it runs
            elsewhere (``serve --no-worker``).
        max_body_bytes: Larger request bodies are refused with 413.
    """
    context = ServerContext(app=app, worker=worker, max_body_bytes=max_body_bytes)
    wake = worker.wake if isinstance(worker, Wakeable) else None
    context.card_actions = ApprovalCardActions(app, wake=wake)
    routes = [route for family in ROUTE_FAMILIES for route in family(context)]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        summaries = asyncio.create_task(refusals.flush_every(app, context.refusals))
        try:
            yield
        finally:
            summaries.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await summaries
            try:
                await context.aclose()  # e.g. the callback batch in flight is written
            finally:
                await refusals.flush(app, context.refusals, everything=True)

    web = Starlette(
        routes=routes,
        middleware=[
            Middleware(CatchAll),
            Middleware(BodyLimit, limit=max_body_bytes),
        ],
        exception_handlers=exception_handlers(max_body_bytes),
        lifespan=lifespan,
    )
    web.state.context = context
    return web
