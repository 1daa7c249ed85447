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
    retry_cards: Annotated[
        bool,
        typer.Option("--retry-cards", help="Post or update the approval cards given up on, again."),
    ] = False,
    as_: AsOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List deliveries (and approval cards) that were given up on; --retry ID, --all or
    --retry-cards puts them back in the queue."""
    from broadcaster.deadletters import (
        list_dead_letters,
        retry_approval_cards,
        retry_dead_letters,
    )

    cli = state(ctx)
    app = cli.app()
    if sum((bool(retry), retry_all, retry_cards)) > 1:
        fail("give one of --retry ID, --all and --retry-cards")
    if retry_cards:
        announcements = retry_approval_cards(app, cli.person(as_))
        emit_result(
            as_json,
            {"retried_cards": announcements},
            f"Queued the approval card of {len(announcements)} announcement(s) again"
            + (f": {', '.join(f'#{n}' for n in announcements)}" if announcements else "")
            + ". A running worker posts them.",
        )
        return
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
    found = document["deadletters"]
    if not found:
        stdout().print("No dead deliveries." if document["approval_cards"] else "No dead letters.")
    else:
        _print_deliveries(found, wide)
    _print_cards(document["approval_cards"])


def _print_deliveries(found: list[dict[str, Any]], wide: bool) -> None:
    from rich.markup import escape

    from broadcaster.cli.tables import Column, Fit, print_table

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


def _print_cards(cards: list[dict[str, Any]]) -> None:
    """Each card given up on, with why (the fix is in the error); approvers can still decide at
    the command line meanwhile."""
    from rich.markup import escape

    if not cards:
        return
    out = stdout()
    out.print("\nApproval cards not posted or updated in Teams:")
    for card in cards:
        error = " ".join((card["last_error"] or "no error recorded").split())
        out.print(
            escape(f"  #{card['announcement_id']} {card['title']} ({card['attempts']} tries): "),
            escape(error),
            sep="",
            soft_wrap=False,
        )
    out.print("Fix what the error says, then: broadcaster deadletters --retry-cards")


def register(app: typer.Typer) -> None:
    """Add this command to the root app."""
    app.command()(deadletters)
