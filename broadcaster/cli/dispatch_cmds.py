"""Sending and following: ``send``, ``status``, ``worker``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from broadcaster.cli._common import (
    AsOption,
    IdArgument,
    JsonOption,
    OptionalIdArgument,
    emit_json,
    emit_result,
    fail,
    state,
)
from broadcaster.cli.status_view import NO_WORKER_AFTER_S
from broadcaster.cli.tables import WideOption

if TYPE_CHECKING:
    from broadcaster.app import App
    from broadcaster.schedule import SendOutcome

__all__ = ["register"]


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
    as_json: JsonOption = False,
) -> None:
    """Dispatch the approved revision to all its targets (the worker delivers)."""
    from broadcaster.schedule import send_announcement
    from broadcaster.timeutil import parse_when

    if cancel and at is not None:
        fail("give --at WHEN (to move the send) or --cancel (to take it back), not both")
    if cancel:
        _unschedule(ctx, announcement_id, as_, as_json)
        return
    cli = state(ctx)
    app = cli.app()
    timezone = app.config.broadcaster.timezone
    when = parse_when(at, timezone, app.clock()) if at is not None else None
    outcome = send_announcement(app, cli.person(as_), announcement_id, at=when, confirmed=yes)
    _report_send(outcome, timezone, app.clock(), as_json=as_json)


def unschedule(
    ctx: typer.Context,
    announcement_id: IdArgument,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take back a scheduled send that has not started (the same as `send ID --cancel`)."""
    _unschedule(ctx, announcement_id, as_, as_json)


def _unschedule(ctx: typer.Context, announcement_id: int, as_: str | None, as_json: bool) -> None:
    from broadcaster.schedule import unschedule as unschedule_send
    from broadcaster.timeutil import format_short

    cli = state(ctx)
    app = cli.app()
    outcome = unschedule_send(app, cli.person(as_), announcement_id)
    was = outcome.previous
    timezone = app.config.broadcaster.timezone
    when = f" (it was due {format_short(was, timezone, app.clock())})" if was else ""
    announcement = outcome.announcement
    document = {
        "id": announcement.id,
        "revision": announcement.revision.number,
        "state": str(announcement.state),
        "was_due": _iso(was),
    }
    emit_result(
        as_json,
        document,
        f"Took back the send of announcement {announcement_id}{when}; "
        f"it is approved again. Send it with `broadcaster send {announcement_id}` "
        "(now) or with `--at WHEN`.",
    )


def _report_send(outcome: SendOutcome, timezone: str, now: datetime, *, as_json: bool) -> None:
    from broadcaster.timeutil import ambiguity_note, format_short

    announcement = outcome.announcement
    number = announcement.id
    targets = announcement.revision.content.targets
    document = {
        "id": number,
        "revision": announcement.revision.number,
        "state": str(announcement.state),
        "targets": list(targets),
        "at": _iso(outcome.at),
        "previous": _iso(outcome.previous),
    }
    if outcome.at is None:
        emit_result(
            as_json,
            document,
            f"Queued announcement {number} for {len(targets)} target(s) now. Follow with "
            f"`broadcaster status {number}` (a worker must be running: `broadcaster worker`).",
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
    emit_result(
        as_json,
        document,
        f"{first}{' ' + note if note else ''}\n"
        f"Take it back with `broadcaster send {number} --cancel`, move it with "
        f"`broadcaster send {number} --at WHEN`; a worker must be running then "
        "(`broadcaster worker`).",
    )


def status(
    ctx: typer.Context,
    announcement_id: OptionalIdArgument = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep updating until delivery is finished.")
    ] = False,
    target: Annotated[
        str | None,
        typer.Option("--target", metavar="TARGET", help="Only this target's progress."),
    ] = None,
    failed: Annotated[
        bool,
        typer.Option(
            "--failed",
            help="With --target of an SMS list: its recipients whose text failed (dead, "
            "undelivered, failed), numbers masked.",
        ),
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
    """Per-target progress of an announcement (or an overview of recent ones).

    An SMS list is one line per list, never one per person: recipients, then sent (accepted by
    Twilio, no report from the phone yet), delivered (reported delivered), failed (dead, or
    reported undelivered or failed), pending (not finished yet), opted out (on the opt-out list,
    not sent) and, if any, cancelled otherwise. Each recipient is counted once, so these add up
    to the recipients. They are the counts of the newest revision sent to the list; --json has
    them under "lists", and one summed entry per list and revision under "deliveries". --follow
    shows a progress bar per list. The failed recipients themselves, numbers masked:
    `status ID --target TARGET --failed`.
    """
    from broadcaster.cli.status_view import follow as follow_status
    from broadcaster.cli.status_view import print_overview, print_status
    from broadcaster.reports import announcement_status, overview

    if announcement_id is None and (target is not None or failed):
        fail("--target and --failed need an announcement: broadcaster status ID --target TARGET")
    if failed and target is None:
        fail("--failed needs --target TARGET: the SMS list whose failed recipients to show")
    if failed and follow:
        fail("--failed shows the failed recipients once; leave out --follow")
    app = state(ctx).app()
    if announcement_id is None:
        document = overview(app)
        if as_json:
            emit_json(document)
        else:
            print_overview(document, wide=wide)
        return
    if failed and target is not None:
        _failed(app, announcement_id, target, as_json=as_json, wide=wide)
        return
    document = announcement_status(app, announcement_id, target)
    if follow and not as_json:
        follow_status(
            app, announcement_id, target=target, wide=wide, no_worker_after=no_worker_after
        )
        return
    if as_json:
        emit_json(document)
    else:
        print_status(document, app.config.broadcaster.timezone, wide=wide)


def _failed(app: App, announcement_id: int, target: str, *, as_json: bool, wide: bool) -> None:
    from broadcaster.cli.lists_view import print_failed
    from broadcaster.reports import failed_recipients_report

    report = failed_recipients_report(app, announcement_id, target)
    if as_json:
        emit_json(report)
    else:
        print_failed(report, wide=wide)


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
    app.command()(unschedule)
    app.command()(status)
    app.command()(worker)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None
