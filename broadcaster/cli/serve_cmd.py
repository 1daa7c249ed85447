"""``broadcaster serve``: HTTP endpoints (Teams bot, Twilio, health, metrics) and the worker."""

from __future__ import annotations

from typing import Annotated

import typer

from broadcaster.cli._common import state

__all__ = ["register"]


def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on (0.0.0.0: every interface; mind a proxy)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")
    ] = 8080,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="Only answer HTTP; run `broadcaster worker` elsewhere."),
    ] = False,
    json_logs: Annotated[
        bool, typer.Option("--json-logs", help="Log one JSON object per line (for machines).")
    ] = False,
) -> None:
    """Answer HTTP (Teams bot, Twilio callbacks, /healthz, /metrics) and run the queue."""
    import logging
    import sys

    from broadcaster.logs import log_to
    from broadcaster.server.runner import run_serve

    app = state(ctx).app()
    with log_to(sys.stderr, app.config.broadcaster.timezone, json_lines=json_logs) as handler:
        # uvicorn's own warnings (malformed requests, shutdown timeouts) in the same format,
        # with the same masking; its start-up chatter is ours to say.
        uvicorn_log = logging.getLogger("uvicorn")
        uvicorn_log.addHandler(handler)
        uvicorn_log.setLevel(logging.WARNING)
        uvicorn_log.propagate = False
        try:
            run_serve(app, host=host, port=port, worker=not no_worker)
        finally:
            uvicorn_log.removeHandler(handler)


def register(app: typer.Typer) -> None:
    """Add this command to the root app."""
    app.command()(serve)
