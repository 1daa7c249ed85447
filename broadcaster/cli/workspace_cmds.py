"""``broadcaster init`` and ``broadcaster check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from broadcaster.cli._common import JsonOption, emit_json, error_document, fail, state, stdout
from broadcaster.cli._shell import broadcaster_command, quote

__all__ = ["register"]


def init(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(help="Folder for the new workspace (created if missing).")
    ] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Create a workspace with a working example for Borgholm and Mörbylånga."""
    from broadcaster.scaffold import init_workspace

    target = directory if directory.is_absolute() else state(ctx).cwd / directory
    try:
        written = init_workspace(target)
    except OSError as exc:  # a folder that cannot be made: under a file, read-only, ...
        fail(f"cannot create a workspace in {target}: {exc.strerror or exc}")
    if as_json:
        emit_json(
            {
                "workspace": str(target.resolve()),
                "files": [str(path.relative_to(target)) for path in written],
            }
        )
        return
    console = stdout()
    console.print(f"Created a workspace in [bold]{target.resolve()}[/]:")
    for path in written:
        console.print(f"  {path.relative_to(target)}")
    command = broadcaster_command()
    console.print(
        f"\nNext: cd {quote(directory)} && {command} check && "
        f'{command} draft --title "..." --body-file uppdatering.md --to all',
        markup=False,
    )


def check(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """Validate the configuration, secrets, database and templates."""
    from broadcaster.checks import check_workspace

    report = check_workspace(state(ctx).app())
    if as_json:
        document = report.to_json()
        if report.problems:
            # The report itself, plus the "error" every failing --json command carries.
            found = f"{len(report.problems)} problem(s) found"
            document |= error_document("check_failed", found, report.problems)
        emit_json(document)
    else:
        from rich.markup import escape

        console = stdout()
        # Lines quote configuration sections ("[approval] required"): never read as markup.
        for line in report.lines:
            console.print(f"[green]ok[/]   {escape(line)}")
        for problem in report.problems:
            console.print(f"[red]fail[/] {escape(problem)}")
    if report.problems:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(init)
    app.command()(check)
