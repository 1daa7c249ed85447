"""What ``status`` shows of SMS lists: a small table of counts per list, progress bars under
``--follow``, and (asked for with ``--target T --failed``) the recipients that failed.

Counts only, unless the failed recipients are asked for; their numbers are masked by the report
(:mod:`broadcaster.list_progress`) before they get here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broadcaster.cli._common import stdout
from broadcaster.cli.tables import Column, Fit, fit_line, print_table, render_table

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["lists_renderable", "print_failed"]

#: The failed recipients printed as a table; --json lists them all.
MAX_FAILED_ROWS = 200

_COUNTS = (
    ("recipients", "recipients"),
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("failed", "failed"),
    ("pending", "pending"),
    ("opted_out", "opted out"),
)
_FAILED_COLUMNS = (
    Column("delivery"),
    Column("number"),
    Column("state"),
    Column("code"),
    Column("last error", Fit.SHRINK, min_width=12),
)


def lists_renderable(
    console: Console, document: dict[str, Any], *, wide: bool = False, bars: bool = False
) -> RenderableType | None:
    """The per-list counts of a status document (None when it has no list), under a title line;
    with ``bars``, a progress bar per list; and how to see the failed recipients."""
    from rich.console import Group
    from rich.markup import escape

    lists: dict[str, dict[str, Any]] = document.get("lists") or {}
    if not lists:
        return None
    counts = list(_COUNTS)
    if any(found["cancelled"] for found in lists.values()):
        counts.append(("cancelled", "cancelled"))  # rare: cancelled, but not opted out
    columns = (Column("list", Fit.MIDDLE, min_width=12), *(Column(h) for _, h in counts))
    rows = [
        [_list_cell(target, found, document["revision"]), *(str(found[k]) for k, _ in counts)]
        for target, found in lists.items()
    ]
    table = render_table(console, columns, rows, wide=wide, title="Recipient lists")
    parts: list[RenderableType] = ["", table]
    if bars:
        parts.append(_bars(console, lists))
    parts += [
        escape(f"Failed on {target}: {_failed_command(document['id'], target)}")
        for target, found in lists.items()
        if found["failed"]
    ]
    return Group(*parts)


def print_failed(report: dict[str, Any], *, wide: bool = False) -> None:
    """Print the failed recipients of one list (``status ID --target T --failed``)."""
    from rich.markup import escape

    console = stdout()
    title = (
        f"#{report['id']} {escape(report['title'])} — {escape(report['target'])}, revision "
        f"{report['revision']}: {report['count']} failed recipient(s)"
    )
    if not report["failed"]:
        console.print(fit_line(title, console.width))
        return
    shown = report["failed"][:MAX_FAILED_ROWS]
    rows = [
        [
            str(row["delivery_id"]),
            escape(row["number"]),
            row["platform_status"] or row["state"],
            "" if row["error_code"] is None else str(row["error_code"]),
            escape(" ".join((row["last_error"] or "").split())),
        ]
        for row in shown
    ]
    print_table(console, _FAILED_COLUMNS, rows, wide=wide, title=title)
    if len(report["failed"]) > len(shown):
        console.print(f"... and {len(report['failed']) - len(shown)} more (--json lists them all)")


def _failed_command(announcement_id: int, target: str) -> str:
    return f"broadcaster status {announcement_id} --target {target} --failed"


def _list_cell(target: str, found: dict[str, Any], revision: int) -> str:
    from rich.markup import escape

    # The counts are the newest revision sent to the list: say so when that is an older one.
    older = f" (rev {found['revision']})" if found["revision"] != revision else ""
    return escape(f"{target}{older}")


def _bars(console: Console, lists: dict[str, dict[str, Any]]) -> RenderableType:
    """``sms-borgholm ━━━━━━━━━━━━╸━━━━━━  12000/26000  46%``, one line per list, within the
    console's width. Done is every recipient no longer pending: sent, delivered, failed, opted
    out (or cancelled)."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    name_width = min(24, max(len(target) for target in lists))
    figures = {t: f"{f['recipients'] - f['pending']}/{f['recipients']}" for t, f in lists.items()}
    figure_width = max(len(text) for text in figures.values())
    bar_width = max(10, min(50, console.width - name_width - figure_width - 4 - 3 * 2))
    lines: list[RenderableType] = []
    for target, found in lists.items():
        total = max(1, found["recipients"])
        done = found["recipients"] - found["pending"]
        line = Table.grid(padding=(0, 2))
        line.add_column(width=name_width, no_wrap=True, overflow="ellipsis")
        line.add_column(width=bar_width)
        line.add_column(width=figure_width, justify="right")
        line.add_column(width=4, justify="right")
        bar = ProgressBar(total=total, completed=done, width=bar_width)
        line.add_row(target, bar, figures[target], f"{done * 100 // total}%")
        lines.append(line)
    return Group(*lines)
