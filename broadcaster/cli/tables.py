"""Tables that fit the terminal (80 columns by default) without cutting what identifies a row.

Rich, left to itself, shrinks every column of a table that is too wide, ids and states included,
down to nothing. Here each column says how it may give way: ``KEEP`` columns (ids, states,
counts) are never cut; ``SHRINK`` columns (titles) are abbreviated with an ellipsis at the end,
``MIDDLE`` columns (target ids, which differ at the end) in the middle; ``WRAP`` columns fold
onto more lines. When even the kept columns do not fit, the
rows are stacked, one ``header: value`` line each. ``wide`` shows everything on one line per row,
however long (``--wide``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

__all__ = [
    "Column",
    "Fit",
    "WideOption",
    "cell_time",
    "fit_line",
    "print_table",
    "render_table",
    "short_list",
]

WideOption = Annotated[
    bool, typer.Option("--wide", help="Show every column in full, however wide the table gets.")
]


class Fit(Enum):
    """How a column gives way when the table is wider than the terminal."""

    KEEP = "keep"
    SHRINK = "shrink"
    MIDDLE = "middle"
    WRAP = "wrap"


@dataclass(frozen=True)
class Column:
    """One column: its header, how it gives way, the narrowest it may become, and when.

    Columns with a higher ``give`` give way first; the one that matters most has the lowest.
    """

    header: str
    fit: Fit = Fit.KEEP
    min_width: int = 8
    give: int = 1


def print_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    wide: bool = False,
    title: str | None = None,
) -> None:
    """Print ``rows`` (cells in rich markup) as a table that fits ``console``'s width."""
    if wide:
        needed = sum(_natural(columns, rows)) + _overhead(console, len(columns))
        console = _wide_console(console, max(needed, _cell_len(title or "")))
    console.print(render_table(console, columns, rows, wide=wide, title=title))


def render_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    wide: bool = False,
    title: str | None = None,
) -> RenderableType:
    """The table (under its title line) for ``console``'s width; for live displays too."""
    from rich.console import Group

    natural = _natural(columns, rows)
    if wide:
        body: RenderableType = _table(columns, rows, natural)
    else:
        widths = _fitted(columns, natural, console.width - _overhead(console, len(columns)))
        body = _table(columns, rows, widths) if widths else _stacked(columns, rows)
    if title is None:
        return body
    return Group(title if wide else fit_line(title, console.width), body)


def _natural(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[int]:
    return [
        max([_cell_len(column.header), *(_cell_len(row[i]) for row in rows)])
        for i, column in enumerate(columns)
    ]


def fit_line(markup: str, width: int) -> str:
    """One line of rich markup, abbreviated with an ellipsis to at most ``width`` cells."""
    from rich.text import Text

    text = Text.from_markup(markup)
    if text.cell_len <= width:
        return markup
    text.truncate(max(1, width), overflow="ellipsis")
    return text.markup


def cell_time(moment: datetime, timezone: str) -> str:
    """``2026-12-12 20:15`` in the workspace's zone: unambiguous, and short enough for a cell."""
    from zoneinfo import ZoneInfo

    return f"{moment.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"


def short_list(items: Sequence[str], *, wide: bool) -> str:
    """``web-borgholm +13 more``: a long list in a narrow table (all of it with ``wide``)."""
    if wide or len(items) <= 2:
        return ", ".join(items)
    return f"{items[0]} +{len(items) - 1} more"


def _fitted(columns: Sequence[Column], natural: list[int], budget: int) -> list[int] | None:
    """Column widths within ``budget``: the columns that matter least give way first."""
    widths = list(natural)
    excess = sum(widths) - budget
    order = sorted(range(len(columns)), key=lambda i: (-columns[i].give, -widths[i]))
    for i in order:
        if excess <= 0:
            break
        if columns[i].fit is Fit.KEEP:
            continue
        step = min(excess, max(0, widths[i] - columns[i].min_width))
        widths[i] -= step
        excess -= step
    return widths if excess <= 0 else None  # None: even the kept columns do not fit: stack


def _table(columns: Sequence[Column], rows: Sequence[Sequence[str]], widths: list[int]) -> Table:
    from rich import box
    from rich.table import Table

    # A rule under the header and two spaces between columns: the most table in 80 columns.
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for column, width in zip(columns, widths, strict=True):
        wraps = column.fit is Fit.WRAP
        table.add_column(
            column.header,
            width=width,
            no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
        )
    middle = [i for i, column in enumerate(columns) if column.fit is Fit.MIDDLE]
    for row in rows:
        cells = list(row)
        for i in middle:
            cells[i] = _middle_cut(cells[i], widths[i])
        table.add_row(*cells)
    return table


def _middle_cut(markup: str, width: int) -> str:
    """``web-borgholm-skola-nummer-01`` -> ``web-borgh…nummer-01``: both ends stay readable."""
    from rich.markup import escape
    from rich.text import Text

    plain = Text.from_markup(markup).plain
    if len(plain) <= width or width < 3:
        return markup
    tail = (width - 1) // 2
    head = width - 1 - tail
    return escape(f"{plain[:head]}…{plain[-tail:]}")


def _stacked(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> RenderableType:
    """One ``header: value`` line per cell, a blank line between rows (for very narrow screens)."""
    from rich.console import Group
    from rich.text import Text

    lines: list[RenderableType] = []
    for number, row in enumerate(rows):
        if number:
            lines.append(Text(""))
        for column, cell in zip(columns, row, strict=True):
            if cell:
                lines.append(Text.from_markup(f"[bold]{column.header}:[/] {cell}"))
    return Group(*lines)


def _overhead(console: Console, count: int) -> int:
    """The cells a table's padding and rules take, beyond its columns' own widths."""
    from rich.measure import Measurement

    probe = _table([Column("")] * count, [], [1] * count)
    return Measurement.get(console, console.options, probe).maximum - count


def _wide_console(console: Console, width: int) -> Console:
    """A console like ``console`` that is at least ``width`` cells wide."""
    from rich.console import Console

    if width <= console.width:
        return console
    return Console(file=console.file, width=width, highlight=False, soft_wrap=True)


def _cell_len(markup: str) -> int:
    from rich.text import Text

    return max((Text.from_markup(line).cell_len for line in markup.split("\n")), default=0)
