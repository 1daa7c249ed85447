"""What ``status`` shows people: the per-target table, the overview, and ``--follow``.

The tables fit the terminal (see :mod:`broadcaster.cli.tables`); ``--follow`` redraws the table
until delivery is finished and says, once, when no worker seems to be running. SMS lists get
their own small table of counts, with a progress bar per list under ``--follow``
(:mod:`broadcaster.cli.lists_view`).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from broadcaster.cli._common import stderr, stdout
from broadcaster.cli.lists_view import lists_renderable
from broadcaster.cli.tables import Column, Fit, cell_time, print_table, render_table

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from broadcaster.app import App

__all__ = [
    "NO_WORKER_AFTER_S",
    "follow",
    "print_overview",
    "print_status",
    "state_cell",
    "status_renderable",
]

FINAL_STATES = ("sent", "partially_failed", "cancelled", "rejected")

#: How long jobs may wait unclaimed before ``--follow`` says that no worker seems to run.
NO_WORKER_AFTER_S = 10.0

NO_WORKER_NOTICE = (
    "No worker seems to be running: jobs are due and none has been claimed for {seconds:g} s. "
    "Start one in this workspace with `broadcaster worker`."
)

_DELIVERY_COLUMNS = (
    Column("target", Fit.MIDDLE, min_width=12),
    Column("channel", Fit.SHRINK, min_width=4, give=3),
    Column("state"),
    Column("tries"),
    Column("platform id", Fit.SHRINK, min_width=6, give=4),
    Column("last error", Fit.SHRINK, min_width=12, give=2),
    Column("next attempt"),
)
_OVERVIEW_COLUMNS = (
    Column("id"),
    Column("state"),
    Column("rev"),
    Column("title", Fit.SHRINK, min_width=10, give=2),
    Column("deliveries", Fit.WRAP, min_width=12),
)


def status_renderable(
    console: Console,
    document: dict[str, Any],
    timezone: str,
    *,
    wide: bool = False,
    bars: bool = False,
) -> RenderableType:
    """One announcement's status for ``console``: its title line, the per-target table and the
    counts of its SMS lists (with ``bars``, a progress bar for each)."""
    from rich.console import Group

    title = _title(document)
    if not document["deliveries"]:
        return f"{title}; nothing has been sent yet."
    rows = [_delivery_row(d, timezone, wide) for d in document["deliveries"]]
    table = render_table(console, _DELIVERY_COLUMNS, rows, wide=wide, title=title)
    lists = lists_renderable(console, document, wide=wide, bars=bars)
    return table if lists is None else Group(table, lists)


def print_status(document: dict[str, Any], timezone: str, *, wide: bool = False) -> None:
    """Print one announcement's status."""
    console = stdout()
    if not document["deliveries"]:
        console.print(status_renderable(console, document, timezone))
    else:
        rows = [_delivery_row(d, timezone, wide) for d in document["deliveries"]]
        print_table(console, _DELIVERY_COLUMNS, rows, wide=wide, title=_title(document))
        lists = lists_renderable(console, document, wide=wide)
        if lists is not None:
            console.print(lists)
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


def print_overview(document: dict[str, Any], *, wide: bool = False) -> None:
    """Print recent announcements with their delivery counts."""
    from rich.markup import escape

    console = stdout()
    if not document["announcements"]:
        console.print("No announcements yet.")
        return
    rows = [
        [
            str(row["id"]),
            state_cell(row),
            str(row["revision"]),
            escape(row["title"]),
            ", ".join(f"{n} {s}" for s, n in row["deliveries"].items()),
        ]
        for row in document["announcements"]
    ]
    print_table(console, _OVERVIEW_COLUMNS, rows, wide=wide)


def follow(
    app: App,
    announcement_id: int,
    *,
    target: str | None = None,
    wide: bool = False,
    no_worker_after: float = NO_WORKER_AFTER_S,
    poll: float = 1.0,
    console: Console | None = None,
) -> None:
    """Redraw the status (of one ``target``, or all) until delivery is finished, with a progress
    bar per SMS list; say once if no worker seems to run."""
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    from broadcaster.reports import announcement_status, workers_absent

    timezone = app.config.broadcaster.timezone
    # Not stdout()'s soft wrapping: a live area crops long lines instead of wrapping them.
    console = console or Console(highlight=False)
    notice = NO_WORKER_NOTICE.format(seconds=no_worker_after)
    silence = timedelta(seconds=no_worker_after)
    said = False

    def picture(document: dict[str, Any], absent: bool) -> RenderableType:
        view = status_renderable(console, document, timezone, wide=wide, bars=True)
        # On a terminal the notice sits under the table, in the live area, while it holds.
        if not (absent and console.is_terminal):
            return view
        return Group(view, Text(notice, style="yellow"))

    document = announcement_status(app, announcement_id, target)
    with Live(picture(document, False), console=console, refresh_per_second=2) as live:
        while document["state"] not in FINAL_STATES:
            time.sleep(poll)
            document = announcement_status(app, announcement_id, target)
            absent = workers_absent(app, silence)
            if absent and not said and not console.is_terminal:
                # Piped output shows only the last picture: the notice goes to stderr, once.
                stderr().print(notice)
            said = said or absent
            live.update(picture(document, absent))


def state_cell(row: dict[str, Any]) -> str:
    """An announcement's state for a table: a scheduled send shows when it is due."""
    schedule = row.get("schedule")
    return f"scheduled {schedule['local']}" if schedule else str(row["state"])


def _title(document: dict[str, Any]) -> str:
    from rich.markup import escape

    return (
        f"#{document['id']} {escape(document['title'])} — {document['state']} "
        f"(revision {document['revision']})"
    )


def _delivery_row(delivery: dict[str, Any], timezone: str, wide: bool) -> list[str]:
    next_at = delivery["next_attempt_at"]
    return [
        delivery["target"],
        delivery["channel"],
        _styled_state(delivery["state"]),
        str(delivery["attempts"]),
        delivery["platform_id"] or "",
        _one_line(delivery["last_error"]),
        cell_time(datetime.fromisoformat(next_at), timezone) if next_at else "",
    ]


def _styled_state(value: str) -> str:
    colour = {"sent": "green", "dead": "red", "retrying": "yellow", "unknown": "magenta"}
    return f"[{colour[value]}]{value}[/]" if value in colour else value


def _one_line(text: str | None) -> str:
    from rich.markup import escape

    return escape(" ".join(text.split())) if text else ""
