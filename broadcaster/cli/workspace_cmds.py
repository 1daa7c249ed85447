"""``broadcaster init`` and ``broadcaster check``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from broadcaster.cli._common import JsonOption, emit_json, error_document, fail, state, stdout
from broadcaster.cli._shell import broadcaster_command, quote

if TYPE_CHECKING:
    from broadcaster.checks import CheckReport, OnlineResult

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
    online: Annotated[
        bool,
        typer.Option(
            "--online", help="Also ask every target's platform whether its credentials work."
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.1,
            max=300,
            metavar="SECONDS",
            help="With --online: how long each target may take.",
        ),
    ] = 15.0,
    as_json: JsonOption = False,
) -> None:
    """Validate the configuration, secrets, database and templates; --online asks the platforms.

    Exit 2 if the workspace itself has a problem, 1 if a platform refuses a target (--online).
    """
    from broadcaster.checks import check_online, check_workspace

    app = state(ctx).app()
    report = check_workspace(app)
    results = check_online(app, timeout) if online else None
    refused = [f"{r.target}: {'; '.join(r.problems)}" for r in results or [] if r.problems]
    if as_json:
        _emit_check_json(report, results, refused)
    else:
        _print_check(report, results)
    if report.problems:
        raise typer.Exit(2)
    if refused:
        raise typer.Exit(1)


def _emit_check_json(
    report: CheckReport, results: list[OnlineResult] | None, refused: list[str]
) -> None:
    document = report.to_json()
    if results is not None:
        document["online"] = [r.to_json() for r in results]
    if report.problems:
        # The report itself, plus the "error" every failing --json command carries.
        found = f"{len(report.problems)} problem(s) found"
        document |= error_document("check_failed", found, report.problems)
    elif refused:
        found = f"{len(refused)} target(s) failed the online check"
        document |= error_document("check_online_failed", found, refused)
    emit_json(document)


def _print_check(report: CheckReport, results: list[OnlineResult] | None) -> None:
    from rich.markup import escape

    console = stdout()
    # Lines quote configuration sections ("[approval] required"): never read as markup.
    for line in report.lines:
        console.print(f"[green]ok[/]   {escape(line)}")
    for warning in report.warnings:
        console.print(f"[yellow]warn[/] {escape(warning)}")
    for problem in report.problems:
        console.print(f"[red]fail[/] {escape(problem)}")
    for result in results or []:
        where = f"online {result.target} ({result.channel})"
        if result.problems:
            console.print(f"[red]fail[/] {escape(where)}: {escape('; '.join(result.problems))}")
        else:
            console.print(f"[green]ok[/]   {escape(where)}: the platform accepts its credentials")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(init)
    app.command()(check)
