"""The HTTP side of broadcaster, run by ``broadcaster serve``.

One Starlette application (:func:`create_app`) with one module per family of routes:
:mod:`.health` (``GET /healthz``), :mod:`.metrics` (``GET /metrics``, Prometheus) and
:mod:`.twilio_status` (``POST /twilio/status``, Twilio's signed status callbacks).
:mod:`.runner` serves it with uvicorn and runs the queue worker in the same event loop.
Importing this package loads Starlette: only ``serve`` does.
"""

from __future__ import annotations

from broadcaster.server.app import create_app
from broadcaster.server.context import ServerContext, WorkerProbe

__all__ = ["ServerContext", "WorkerProbe", "create_app"]
