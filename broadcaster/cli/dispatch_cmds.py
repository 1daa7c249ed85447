"""Sending and following: ``send``, ``status``, ``worker``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from broadcaster.cli._common import (
    AsOption,
    IdArgument,
    JsonOption,
    OptionalIdArgument,
    emit_json,
    fail,
    state,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["print_status", "register", "state_cell", "status_table"]

_FINAL_STATES = ("sent", "partially_failed", "cancelled", "rejected")


def send(
    ctx: typer.Context,
    announcement_id: IdArgument,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="Later, in the workspace's time zone: 18:00 (today), 2026-12-13 08:00, "
            "2026-12-13T08:00+01:00, +30m, +4h, +1d, now. On a scheduled send: moves it.",
        ),
    ] = None,
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Take back a scheduled send that has not started.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm a time more than 7 days ahead.")
    ] = False,
    as_: AsOption = None,
) -> None:
    """Dispatch the approved revision to all its targets (the worker delivers)."""
    from broadcaster.schedule import send_announcement
    from broadcaster.timeutil import parse_when

    if cancel and at is not None:
        fail("give --at WHEN (to move the send) or --cancel (to take it back), not both")
    if cancel:
        _unschedule(ctx, announcement_id, as_)
        return
    cli = state(ctx)
    app = cli.app()
    timezone = app.config.broadcaster.timezone
    when = parse_when(at, timezone, app.clock()) if at is not None else None
    outcome = send_announcement(app, cli.person(as_), announcement_id, at=when, confirmed=yes)
    _report_send(outcome, timezone, app.clock())


def unschedule(
    ctx: typer.Context,
    announcement_id: IdArgument,
    as_: AsOption = None,
) -> None:
    """Take back a scheduled send that has not started (the same as `send ID --cancel`)."""
    _unschedule(ctx, announcement_id, as_)


def _unschedule(ctx: typer.Context, announcement_id: int, as_: str | None) -> None:
    from broadcaster.schedule import unschedule as unschedule_send
    from broadcaster.timeutil import format_short

    cli = state(ctx)
    app = cli.app()
    outcome = unschedule_send(app, cli.person(as_), announcement_id)
    was = outcome.previous
    timezone = app.config.broadcaster.timezone
    when = f" (it was due {format_short(was, timezone, app.clock())})" if was else ""
    stdout().print(
        f"Took back the send of announcement {announcement_id}{when}; "
        f"it is approved again. Send it with `broadcaster send {announcement_id}` "
        "(now) or with `--at WHEN`."
    )


def _report_send(outcome: Any, timezone: str, now: Any) -> None:
    from broadcaster.timeutil import ambiguity_note, format_short

    announcement = outcome.announcement
    number = announcement.id
    if outcome.at is None:
        stdout().print(
            f"Queued announcement {number} for {len(announcement.revision.content.targets)} "
            f"target(s) now. Follow with `broadcaster status {number}` (a worker must be "
            "running: `broadcaster worker`)."
        )
        return
    when = f"{format_short(outcome.at, timezone, now)} ({timezone})"
    if outcome.previous is not None:
        was = format_short(outcome.previous, timezone, now)
        first = f"Moved the send of announcement {number} to {when}; it was due {was}."
    else:
        first = (
            f"Scheduled announcement {number} for {len(announcement.revision.content.targets)} "
            f"target(s) at {when}."
        )
    note = ambiguity_note(outcome.at, timezone)
    stdout().print(
        f"{first}{' ' + note if note else ''}\n"
        f"Take it back with `broadcaster send {number} --cancel`, move it with "
        f"`broadcaster send {number} --at WHEN`; a worker must be running then "
        "(`broadcaster worker`)."
    )


def status(
    ctx: typer.Context,
    announcement_id: OptionalIdArgument = None,
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
) -> None:
    """Run the queue: deliver, retry, until stopped with Ctrl-C or SIGTERM."""
    import asyncio
    import logging
    import signal

    from broadcaster.worker_runtime import run_worker

    app = state(ctx).app()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await run_worker(app, until_idle=until_idle, stop=stop)

    processed = asyncio.run(main())
    stderr().print(f"worker stopped after {processed} job(s)")


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
    schedule = document.get("schedule")
    if schedule:
        number = document["id"]
        console.print(
            f"Scheduled: {schedule['local']} ({schedule['timezone']}). Take it back with "
            f"`broadcaster send {number} --cancel`, move it with `--at WHEN`."
        )
    if document.get("note"):
        import textwrap

        why = textwrap.fill(f"Why: {document['note']['text']}", 78, subsequent_indent="     ")
        console.print(why, markup=False)


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
        table.add_row(str(row["id"]), state_cell(row), str(row["revision"]), row["title"], counts)
    return table


def state_cell(row: dict[str, Any]) -> str:
    """An announcement's state for a table: a scheduled send shows when it is due."""
    schedule = row.get("schedule")
    return f"scheduled {schedule['local']}" if schedule else str(row["state"])


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
    app.command()(unschedule)
    app.command()(status)
    app.command()(worker)
