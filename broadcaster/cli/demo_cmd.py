"""``broadcaster demo``: a one-command tour of the whole flow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from broadcaster.cli._common import state, stdout
from broadcaster.cli._shell import broadcaster_command, quote
from broadcaster.cli.tables import WideOption

if TYPE_CHECKING:
    from broadcaster.cli.demo_run import DemoResult

__all__ = ["register"]


def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Workspace folder (default: a new temporary folder, kept)."),
    ] = None,
    wide: WideOption = False,
) -> None:
    """Draft the seed incident's update, approve it in Teams and at the CLI, send it, show it."""
    from broadcaster.cli.demo_run import run_demo

    cli = state(ctx)
    console = stdout()
    folder = None if directory is None else (cli.cwd / directory)
    from broadcaster.sandbox import Sandbox

    with Sandbox() as sandbox:  # in this process, for as long as the demo runs
        result = run_demo(
            folder, cli.environ, lambda line: console.print(f"• {line}", markup=False), sandbox
        )
    console.print()
    _print_arrivals(result, wide=wide)
    console.print("\nCrisis pages (open them in a browser):")
    for page in result.pages:
        console.print(f"  {page}")
    command, number = broadcaster_command(), result.announcement_id
    console.print(
        f"\nTry: cd {quote(result.workspace)} && {command} status {number} "
        f"&& {command} audit {number}",
        markup=False,
    )
    if result.status["state"] != "sent":
        raise typer.Exit(1)


def _print_arrivals(result: DemoResult, *, wide: bool) -> None:
    """One row per target, and one for the approvers' channel: what broadcaster recorded, and
    what the sandbox says arrived."""
    from rich.markup import escape

    from broadcaster.cli.tables import Column, Fit, print_table

    columns = (
        Column("target", Fit.MIDDLE, min_width=12),
        Column("channel", Fit.SHRINK, min_width=5, give=2),
        Column("state"),
        Column("platform id", Fit.SHRINK, min_width=8, give=3),
        Column("the sandbox got", Fit.SHRINK, min_width=12),
    )
    rows = [
        [
            delivery["target"],
            delivery["channel"],
            delivery["state"],
            escape(delivery["platform_id"] or ""),
            result.arrivals.get(delivery["target"]) or "-",
        ]
        for delivery in result.status["deliveries"]
    ]
    card = result.card
    rows.append(["approvers' card", "teams", "posted", escape(card.activity_id), card.arrived])
    status = result.status
    title = f"#{status['id']} {escape(status['title'])} — {status['state']}"
    print_table(stdout(), columns, rows, wide=wide, title=title)


def register(app: typer.Typer) -> None:
    """Add this command to the root app."""
    app.command()(demo)
