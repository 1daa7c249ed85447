"""``GET /healthz``: is this server fit to take work? For load balancers and supervisors.

200 when the database answers and, when the worker runs in this process, the worker is alive;
503 otherwise. The body says which part is unwell and how long the longest-waiting due job has
waited (a growing age with a healthy database means no worker is keeping up). A database that
has not answered within ``ServerContext.database_timeout`` (5 s) counts as unavailable::

    {"status": "ok", "database": "ok", "worker": "running", "oldest_due_job_age_seconds": 0.0}
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from broadcaster.queue.jobs import oldest_due
from broadcaster.server.bounded import BoundedRead
from broadcaster.server.context import ServerContext

__all__ = ["routes"]


def routes(context: ServerContext) -> list[BaseRoute]:
    """The health route of this server."""
    probe = _DatabaseProbe(context)

    async def healthz(request: Request) -> Response:
        database_ok, age = await probe.check()
        worker = "off" if context.worker is None else context.worker.state
        healthy = database_ok and worker in ("off", "running", "starting")
        document = {
            "status": "ok" if healthy else "unavailable",
            "database": "ok" if database_ok else "unavailable",
            "worker": worker,
            "oldest_due_job_age_seconds": age,
        }
        return JSONResponse(
            document, status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"}
        )

    return [Route("/healthz", healthz, methods=["GET"])]


class _DatabaseProbe:
    """Asks the database for the oldest due job (the log says when it stops answering)."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self._read = BoundedRead(self._oldest_due, "health check")

    async def check(self) -> tuple[bool, float | None]:
        """(database answered, seconds the oldest due job has waited or None if none is due)."""
        try:
            oldest, now = await self._read(self.context.database_timeout)
        except Exception:  # any failure to answer is "unavailable", whatever its kind
            return False, None
        if oldest is None:
            return True, None
        return True, round(max(0.0, (now - oldest).total_seconds()), 1)

    def _oldest_due(self) -> tuple[datetime | None, datetime]:
        app = self.context.app
        with app.store.read() as conn:
            now = app.queue_clock(conn)
            return oldest_due(conn, now), now
