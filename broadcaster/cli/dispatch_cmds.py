"""Sending and following: ``send``, ``status``, ``worker``."""

from __future__ import annotations

from typing import Annotated

import typer

from broadcaster.cli._common import AsOption, JsonOption, emit_json, emit_result, state
from broadcaster.cli.status_view import NO_WORKER_AFTER_S
from broadcaster.cli.tables import WideOption

__all__ = ["register"]


def send(
    ctx: typer.Context,
    announcement_id: Annotated[int, typer.Argument(metavar="ID")],
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="WHEN", help="Later: 2026-12-13T08:00, 08:00, +30m, +4h."),
    ] = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dispatch the approved revision to all its targets (the worker delivers)."""
    from broadcaster.dispatch import dispatch_revision
    from broadcaster.timeutil import format_local, parse_when

    cli = state(ctx)
    app = cli.app()
    timezone = app.config.broadcaster.timezone
    when = parse_when(at, timezone, app.clock()) if at else None
    announcement = dispatch_revision(app, cli.person(as_), announcement_id, at=when)
    targets = announcement.revision.content.targets
    moment = f"at {format_local(when, timezone)}" if when else "now"
    document = {
        "id": announcement.id,
        "revision": announcement.revision.number,
        "state": str(announcement.state),
        "targets": list(targets),
        "at": when.isoformat(timespec="seconds") if when else None,
    }
    emit_result(
        as_json,
        document,
        f"Queued announcement {announcement.id} for {len(targets)} target(s) {moment}. "
        f"Follow with `broadcaster status {announcement.id}` (a worker must be running: "
        "`broadcaster worker`).",
    )


def status(
    ctx: typer.Context,
    announcement_id: Annotated[int | None, typer.Argument(metavar="ID")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep updating until delivery is finished.")
    ] = False,
    as_json: JsonOption = False,
    wide: WideOption = False,
    no_worker_after: Annotated[
        float,
        typer.Option(
            "--no-worker-after",
            min=0.1,
            hidden=True,  # for tests: how long --follow waits before it says no worker runs
        ),
    ] = NO_WORKER_AFTER_S,
) -> None:
    """Per-target progress of an announcement (or an overview of recent ones)."""
    from broadcaster.cli.status_view import follow as follow_status
    from broadcaster.cli.status_view import print_overview, print_status
    from broadcaster.reports import announcement_status, overview

    app = state(ctx).app()
    if announcement_id is None:
        document = overview(app)
        if as_json:
            emit_json(document)
        else:
            print_overview(document, wide=wide)
        return
    document = announcement_status(app, announcement_id)
    if follow and not as_json:
        follow_status(app, announcement_id, wide=wide, no_worker_after=no_worker_after)
        return
    if as_json:
        emit_json(document)
    else:
        print_status(document, app.config.broadcaster.timezone, wide=wide)


def worker(
    ctx: typer.Context,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit as soon as no job is due (drain and exit).")
    ] = False,
    json_logs: Annotated[
        bool, typer.Option("--json-logs", help="Log one JSON object per line (for machines).")
    ] = False,
) -> None:
    """Run the queue: deliver, retry, until stopped with Ctrl-C or SIGTERM."""
    import asyncio
    import logging
    import signal
    import sys

    from broadcaster.logs import log_to
    from broadcaster.worker_runtime import run_worker

    app = state(ctx).app()

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await run_worker(app, until_idle=until_idle, stop=stop)

    with log_to(sys.stderr, app.config.broadcaster.timezone, json_lines=json_logs):
        processed = asyncio.run(main())
        logging.getLogger("broadcaster.worker").info(
            "worker stopped after %d job(s)", processed, extra={"jobs": processed}
        )


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(send)
    app.command()(status)
    app.command()(worker)
