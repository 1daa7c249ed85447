"""``broadcaster lists`` and ``broadcaster optout``: SMS recipient lists and opt-outs.

Numbers are personal data: every output here shows them masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from broadcaster.cli._common import AsOption, JsonOption, emit_json, emit_result, state, stdout

__all__ = ["register"]

lists_app = typer.Typer(
    name="lists",
    help="SMS recipient lists: import from CSV, show counts, delete; purge old numbers.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
optout_app = typer.Typer(
    name="optout",
    help="Numbers that get no SMS, whatever list they are on.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The list's name.")]
FileArgument = Annotated[Path, typer.Argument(metavar="FILE", help="A CSV file (UTF-8).")]
NumberArgument = Annotated[str, typer.Argument(metavar="NUMBER", help="A phone number.")]


@lists_app.command("import")
def import_(
    ctx: typer.Context,
    name: NameArgument,
    file: FileArgument,
    organisation: Annotated[
        str | None,
        typer.Option("--organisation", metavar="ORG", help="The organisation the list is for."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the members of an existing list.")
    ] = False,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a CSV file (number[, name[, tags]]) as a list, in one transaction."""
    from broadcaster.recipients import import_list

    cli = state(ctx)
    report = import_list(
        cli.app(), cli.person(as_), name, file, organisation=organisation, replace=replace
    )
    if as_json:
        emit_json(report)
        return
    verb = "Replaced" if report["replaced"] else "Imported"
    out = stdout()
    out.print(
        f"{verb} list {name}: {report['imported']} number(s), "
        f"{report['merged_duplicates']} duplicate(s) merged, "
        f"{report['opted_out']} of them opted out, {len(report['skipped'])} line(s) skipped."
    )
    _print_skipped(report["skipped"])


def _print_skipped(skipped: list[dict[str, Any]]) -> None:
    from rich.markup import escape

    out = stdout()
    for line in skipped[:50]:
        out.print(f"  line {line['line']}: {escape(line['number'])} {escape(line['reason'])}")
    if len(skipped) > 50:
        out.print(f"  ... and {len(skipped) - 50} more (--json lists them all)")


@lists_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="One list.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Counts per list and per tag (numbers are never shown)."""
    from rich.markup import escape

    from broadcaster.recipients import show_lists

    document = show_lists(state(ctx).app(), name)
    if as_json:
        emit_json(document)
        return
    out = stdout()
    if not document["lists"]:
        out.print("No lists yet. Import one with: broadcaster lists import NAME FILE.csv")
        return
    for found in document["lists"]:
        org = f" ({escape(found['organisation'])})" if found["organisation"] else ""
        out.print(
            f"{escape(found['name'])}{org}: {found['recipients']} recipient(s), "
            f"{found['members']} member(s), {found['opted_out']} opted out"
        )
        for tag, count in found["tags"].items():
            out.print(f"  {escape(tag)}: {count}")


@lists_app.command("delete")
def delete(
    ctx: typer.Context, name: NameArgument, as_: AsOption = None, as_json: JsonOption = False
) -> None:
    """Delete a list and every number on it."""
    from broadcaster.recipients import delete_list

    cli = state(ctx)
    report = delete_list(cli.app(), cli.person(as_), name)
    emit_result(as_json, report, f"Deleted list {name} ({report['members']} member(s)).")


@lists_app.command("purge-deliveries")
def purge_deliveries(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Sends dispatched longer ago than this: 12h, 30d, 2w (a whole number and h, d "
            "or w).",
        ),
    ],
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove the phone numbers from old SMS deliveries; the history and counts stay.

    Every finished delivery (sent, failed, cancelled) of a send dispatched longer ago than AGE
    keeps its row, state and times, but its number is replaced for good by a placeholder.
    Deliveries that may still be sent keep theirs. The audit log records the purge (counts only).
    """
    from datetime import datetime

    from broadcaster.cli.tables import cell_time
    from broadcaster.purge import purge_deliveries as purge

    cli = state(ctx)
    app = cli.app()
    report = purge(app, cli.person(as_), older_than)
    before = cell_time(
        datetime.fromisoformat(report["dispatched_before"]), app.config.broadcaster.timezone
    )
    unfinished = (
        f" {report['unfinished']} unfinished one(s) as old keep theirs until they finish."
        if report["unfinished"]
        else ""
    )
    emit_result(
        as_json,
        report,
        f"Purged the numbers of {report['purged']} delivery(ies) dispatched before "
        f"{before} (older than {older_than}).{unfinished}",
    )


@optout_app.command("add")
def optout_add(
    ctx: typer.Context, number: NumberArgument, as_: AsOption = None, as_json: JsonOption = False
) -> None:
    """Opt a number out of every SMS."""
    from broadcaster.recipients import opt_out

    cli = state(ctx)
    report = opt_out(cli.app(), cli.person(as_), number)
    already = " (it already was)" if report["already"] else ""
    emit_result(as_json, report, f"{report['number']} gets no SMS{already}.")


@optout_app.command("remove")
def optout_remove(
    ctx: typer.Context, number: NumberArgument, as_: AsOption = None, as_json: JsonOption = False
) -> None:
    """Take a number off the opt-out list."""
    from broadcaster.recipients import opt_in

    cli = state(ctx)
    report = opt_in(cli.app(), cli.person(as_), number)
    emit_result(as_json, report, f"{report['number']} gets SMS again from the lists it is on.")


@optout_app.command("import")
def optout_import(
    ctx: typer.Context, file: FileArgument, as_: AsOption = None, as_json: JsonOption = False
) -> None:
    """Opt out every number in a CSV file (first column, or the 'number' column)."""
    from broadcaster.recipients import import_opt_outs

    cli = state(ctx)
    report = import_opt_outs(cli.app(), cli.person(as_), file)
    if as_json:
        emit_json(report)
        return
    stdout().print(
        f"Opted out {report['added']} number(s); {report['already']} already were; "
        f"{len(report['skipped'])} line(s) skipped."
    )
    _print_skipped(report["skipped"])


def register(app: typer.Typer) -> None:
    """Add ``lists`` and ``optout`` to the root app."""
    app.add_typer(lists_app)
    app.add_typer(optout_app)
