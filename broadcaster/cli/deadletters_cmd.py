"""``broadcaster deadletters``: what the queue gave up on, and putting it back."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from broadcaster.cli._common import (
    AsOption,
    JsonOption,
    emit_json,
    emit_result,
    fail,
    parse_id,
    state,
    stdout,
)
from broadcaster.cli.tables import WideOption

__all__ = ["register"]


def deadletters(
    ctx: typer.Context,
    retry: Annotated[
        list[int] | None,
        typer.Option(
            "--retry",
            metavar="ID",
            parser=parse_id,
            help="Queue this dead delivery again (repeatable).",
        ),
    ] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Queue every dead delivery again.")] = (
        False
    ),
    as_: AsOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List deliveries that were given up on; --retry ID or --all puts them back in the queue."""
    from broadcaster.deadletters import list_dead_letters, retry_dead_letters

    cli = state(ctx)
    app = cli.app()
    if retry and retry_all:
        fail("give --retry ID or --all, not both")
    if retry or retry_all:
        ids = retry_dead_letters(app, cli.person(as_), None if retry_all else retry)
        emit_result(
            as_json,
            {"retried": ids},
            f"Queued {len(ids)} delivery(ies) again: {', '.join(map(str, ids))}. "
            "A running worker picks them up.",
        )
        return
    document = list_dead_letters(app)
    if as_json:
        emit_json(document)
        return
    _print(document, wide)


def _print(document: dict[str, Any], wide: bool) -> None:
    from rich.markup import escape

    from broadcaster.cli.tables import Column, Fit, print_table

    found = document["deadletters"]
    if not found:
        stdout().print("No dead letters.")
        return
    columns = (
        Column("id"),
        Column("announcement", Fit.SHRINK, min_width=10, give=2),
        Column("target", Fit.MIDDLE, min_width=12),
        Column("recipient"),
        Column("tries"),
        Column("last error", Fit.SHRINK, min_width=16, give=3),
    )
    rows = [
        [
            str(row["id"]),
            f"#{row['announcement_id']} {escape(row['title'])}",
            row["target"],
            row["recipient"] or "",
            str(row["attempts"]),
            escape(" ".join((row["last_error"] or "").split())),
        ]
        for row in found
    ]
    print_table(stdout(), columns, rows, wide=wide)
    stdout().print("Retry with: broadcaster deadletters --retry ID (or --all)")


def register(app: typer.Typer) -> None:
    """Add this command to the root app."""
    app.command()(deadletters)
