"""Sending and following: ``send``, ``status``, ``worker``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from broadcaster.cli._common import AsOption, JsonOption, emit_json, state, stdout

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["print_status", "register", "status_table"]

_FINAL_STATES = ("sent", "partially_failed", "cancelled", "rejected")


def send(
    ctx: typer.Context,
    announcement_id: Annotated[int, typer.Argument(metavar="ID")],
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="WHEN", help="Later: 2026-12-13T08:00, 08:00, +30m, +4h."),
    ] = None,
    as_: AsOption = None,
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
    stdout().print(
        f"Queued announcement {announcement.id} for {len(targets)} target(s) {moment}. "
        f"Follow with `broadcaster status {announcement.id}` (a worker must be running: "
        "`broadcaster worker`)."
    )


def status(
    ctx: typer.Context,
    announcement_id: Annotated[int | None, typer.Argument(metavar="ID")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep updating until delivery is finished.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Per-target progress of an announcement (or an overview of recent ones)."""
    from broadcaster.reports import announcement_status, overview

    app = state(ctx).app()
    if announcement_id is None:
        document = overview(app)
        if as_json:
            emit_json(document)
        else:
            stdout().print(_overview_table(document))
        return
    document = announcement_status(app, announcement_id)
    if follow and not as_json:
        _follow(app, announcement_id)
        return
    if as_json:
        emit_json(document)
    else:
        print_status(document, app.config.broadcaster.timezone)


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


def status_table(document: dict[str, Any], timezone: str) -> Table:
    """The per-delivery table of one announcement."""
    from datetime import datetime

    from rich.table import Table

    from broadcaster.timeutil import format_local

    table = Table(
        "target",
        "channel",
        "state",
        "attempts",
        "platform id",
        "last error",
        "next attempt",
        title=f"#{document['id']} {document['title']} — {document['state']} "
        f"(revision {document['revision']})",
        title_justify="left",
    )
    for delivery in document["deliveries"]:
        next_at = delivery["next_attempt_at"]
        table.add_row(
            delivery["target"],
            delivery["channel"],
            _styled_state(delivery["state"]),
            str(delivery["attempts"]),
            delivery["platform_id"] or "",
            _one_line(delivery["last_error"]),
            format_local(datetime.fromisoformat(next_at), timezone) if next_at else "",
        )
    return table


def print_status(document: dict[str, Any], timezone: str) -> None:
    """Print one announcement's status table."""
    console = stdout()
    if document["deliveries"]:
        console.print(status_table(document, timezone))
    else:
        console.print(
            f"#{document['id']} {document['title']} — {document['state']} "
            f"(revision {document['revision']}); nothing has been sent yet."
        )


def _follow(app: Any, announcement_id: int) -> None:
    from rich.live import Live

    from broadcaster.reports import announcement_status

    timezone = app.config.broadcaster.timezone
    document = announcement_status(app, announcement_id)
    with Live(status_table(document, timezone), console=stdout(), refresh_per_second=2) as live:
        while document["state"] not in _FINAL_STATES:
            time.sleep(1)
            document = announcement_status(app, announcement_id)
            live.update(status_table(document, timezone))


def _overview_table(document: dict[str, Any]) -> Any:
    from rich.table import Table

    if not document["announcements"]:
        return "No announcements yet."
    table = Table("id", "state", "rev", "title", "deliveries")
    for row in document["announcements"]:
        counts = ", ".join(f"{n} {s}" for s, n in row["deliveries"].items())
        table.add_row(str(row["id"]), row["state"], str(row["revision"]), row["title"], counts)
    return table


def _styled_state(value: str) -> str:
    colour = {"sent": "green", "dead": "red", "retrying": "yellow", "unknown": "magenta"}
    return f"[{colour[value]}]{value}[/]" if value in colour else value


def _one_line(text: str | None, width: int = 60) -> str:
    from rich.markup import escape

    if not text:
        return ""
    line = " ".join(text.split())
    return escape(line if len(line) <= width else line[: width - 1] + "…")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(send)
    app.command()(status)
    app.command()(worker)
