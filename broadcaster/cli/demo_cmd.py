"""``broadcaster demo``: a one-command tour of the whole flow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from broadcaster.cli._common import state, stdout
from broadcaster.cli._shell import broadcaster_command, quote
from broadcaster.cli.tables import WideOption

__all__ = ["register"]


def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Workspace folder (default: a new temporary folder, kept)."),
    ] = None,
    wide: WideOption = False,
) -> None:
    """Draft the seed incident's update, approve it twice, send it and show the result."""
    from broadcaster.cli.status_view import print_status
    from broadcaster.demo import run_demo

    cli = state(ctx)
    console = stdout()
    folder = None if directory is None else (cli.cwd / directory)
    result = run_demo(folder, cli.environ, lambda line: console.print(f"• {line}"))
    console.print()
    print_status(result.status, result.timezone, wide=wide)
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


def register(app: typer.Typer) -> None:
    """Add this command to the root app."""
    app.command()(demo)
