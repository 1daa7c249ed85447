"""Writing announcements: ``draft``, ``edit``, ``list``, ``preview``, ``submit``, ``cancel``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from broadcaster.cli._common import (
    AsOption,
    JsonOption,
    emit_json,
    emit_result,
    fail,
    state,
    stdout,
)
from broadcaster.cli.tables import WideOption
from broadcaster.errors import InputError
from broadcaster.model import AnnouncementState, Severity

if TYPE_CHECKING:
    from broadcaster.model import Announcement
    from broadcaster.preview import Preview

__all__ = ["register"]

TitleOption = Annotated[str | None, typer.Option("--title", "-t", help="One line.")]
BodyOption = Annotated[
    str | None,
    typer.Option("--body", "-b", help="Text with light markdown (paragraphs, links, lists)."),
]
BodyFileOption = Annotated[
    Path | None, typer.Option("--body-file", "-f", help="Read the body from a file (- = stdin).")
]
ToOption = Annotated[
    list[str] | None,
    typer.Option("--to", metavar="TARGET|GROUP", help="Repeatable; default: all."),
]
LinkOption = Annotated[str | None, typer.Option("--link", help="An http(s) link for more.")]
LanguageOption = Annotated[str | None, typer.Option("--language", help="Default: sv.")]
OverrideOption = Annotated[
    list[str] | None,
    typer.Option(
        "--override",
        metavar="CHANNEL=TEXT",
        help="Replace the text for one channel, e.g. sms='Kort text'. Repeatable.",
    ),
]


def draft(
    ctx: typer.Context,
    title: TitleOption = None,
    body: BodyOption = None,
    body_file: BodyFileOption = None,
    severity: Annotated[Severity, typer.Option("--severity", "-s")] = Severity.INFO,
    to: ToOption = None,
    link: LinkOption = None,
    language: LanguageOption = None,
    override: OverrideOption = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a new announcement (a draft; nothing is sent)."""
    from broadcaster.authoring import DraftInput, create_draft

    cli = state(ctx)
    if title is None:
        fail("--title is required")
    text = _read_body(body, body_file, required=True) or ""
    draft_input = DraftInput(
        title=title,
        body=text,
        severity=severity,
        language=language,
        link=link,
        overrides=_overrides(override),
        to=tuple(to or ()),
    )
    announcement = create_draft(cli.app(), cli.person(as_), draft_input)
    _report_revision(announcement, "Drafted", as_json)


def edit(
    ctx: typer.Context,
    announcement_id: Annotated[int, typer.Argument(metavar="ID")],
    title: TitleOption = None,
    body: BodyOption = None,
    body_file: BodyFileOption = None,
    severity: Annotated[Severity | None, typer.Option("--severity", "-s")] = None,
    to: ToOption = None,
    link: Annotated[
        str | None, typer.Option("--link", help="An http(s) link; '' removes it.")
    ] = None,
    language: LanguageOption = None,
    override: OverrideOption = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a new revision; earlier approvals no longer count."""
    from broadcaster.authoring import EditInput
    from broadcaster.authoring import edit as edit_announcement

    cli = state(ctx)
    changes = EditInput(
        title=title,
        body=_read_body(body, body_file, required=False),
        severity=severity,
        language=language,
        link=link,
        overrides=_overrides(override) if override else None,
        to=tuple(to) if to else None,
    )
    announcement = edit_announcement(cli.app(), cli.person(as_), announcement_id, changes)
    _report_revision(announcement, "Edited", as_json)


def list_(
    ctx: typer.Context,
    state_filter: Annotated[
        AnnouncementState | None, typer.Option("--state", help="Only this state.")
    ] = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List announcements, newest first."""
    from rich.markup import escape

    from broadcaster.cli.tables import Column, Fit, print_table, short_list
    from broadcaster.reports import announcement_list

    document = announcement_list(state(ctx).app(), state_filter)
    if as_json:
        emit_json(document)
        return
    if not document["announcements"]:
        stdout().print("No announcements yet.")
        return
    columns = (
        Column("id"),
        Column("state"),
        Column("rev"),
        Column("severity", Fit.SHRINK, min_width=4, give=3),
        Column("title", Fit.SHRINK, min_width=12),
        Column("author", Fit.SHRINK, min_width=8, give=3),
        Column("targets", Fit.SHRINK, min_width=12, give=2),
    )
    rows = [
        [
            str(row["id"]),
            row["state"],
            str(row["revision"]),
            row["severity"],
            escape(row["title"]),
            escape(row["author"]),
            short_list(row["targets"], wide=wide),
        ]
        for row in document["announcements"]
    ]
    print_table(stdout(), columns, rows, wide=wide)


def preview(
    ctx: typer.Context,
    announcement_id: Annotated[int, typer.Argument(metavar="ID")],
    target: Annotated[str | None, typer.Option("--target", help="Only this target.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show what each target will get; exit 2 if any of it cannot be sent."""
    from broadcaster.preview import preview_announcement
    from broadcaster.store.announcements import get_announcement

    app = state(ctx).app()
    with app.store.read() as conn:
        announcement = get_announcement(conn, announcement_id)
    result = preview_announcement(app, announcement, target)
    if as_json:
        emit_json(result.to_json())
    else:
        _print_preview(result)
    if result.problems():
        raise typer.Exit(2)


def submit(
    ctx: typer.Context,
    announcement_id: Annotated[int, typer.Argument(metavar="ID")],
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask for approval of the current revision."""
    from broadcaster.authoring import submit as submit_announcement

    cli = state(ctx)
    announcement = submit_announcement(cli.app(), cli.person(as_), announcement_id)
    policy = cli.app().config.approval
    emit_result(
        as_json,
        {
            "id": announcement.id,
            "revision": announcement.revision.number,
            "state": str(announcement.state),
            "content_hash": announcement.revision.content_hash,
            "required": policy.required,
            "approvers": list(policy.approvers),
        },
        f"Announcement {announcement.id} (revision {announcement.revision.number}) is waiting "
        f"for {policy.required} approval(s) from: {', '.join(policy.approvers)}",
    )


def cancel(
    ctx: typer.Context,
    announcement_id: Annotated[int, typer.Argument(metavar="ID")],
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw an announcement that has not been sent."""
    from broadcaster.authoring import cancel as cancel_announcement

    cli = state(ctx)
    announcement = cancel_announcement(cli.app(), cli.person(as_), announcement_id)
    emit_result(
        as_json,
        {"id": announcement.id, "state": str(announcement.state)},
        f"Announcement {announcement.id} is cancelled.",
    )


def _read_body(body: str | None, body_file: Path | None, *, required: bool) -> str | None:
    if body is not None and body_file is not None:
        raise InputError("give --body or --body-file, not both")
    if body is not None:
        return body
    if body_file is not None:
        if str(body_file) == "-":
            return sys.stdin.read()
        try:
            return body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--body-file {body_file}: cannot read it: {exc}") from None
    if not required:
        return None
    if not sys.stdin.isatty():
        raise InputError("give the text with --body or --body-file (- reads standard input)")
    from broadcaster.cli.editor import edit_text

    written = edit_text("\n# Skriv meddelandet ovanför. Rader som börjar med # tas bort.\n")
    text = "\n".join(line for line in written.splitlines() if not line.startswith("#")).strip()
    if not text:
        raise InputError("the editor was closed without text; nothing was drafted")
    return text


def _overrides(values: list[str] | None) -> dict[str, str]:
    overrides = {}
    for item in values or []:
        channel, separator, text = item.partition("=")
        if not separator or not channel.strip() or not text.strip():
            raise InputError(f"--override {item!r}: write CHANNEL=TEXT, e.g. sms='Kort text'")
        overrides[channel.strip()] = text.strip()
    return overrides


def _report_revision(announcement: Announcement, verb: str, as_json: bool) -> None:
    revision = announcement.revision
    if as_json:
        emit_json(
            {
                "id": announcement.id,
                "revision": revision.number,
                "state": str(announcement.state),
                "content_hash": revision.content_hash,
                "targets": list(revision.content.targets),
            }
        )
        return
    stdout().print(
        f"{verb} announcement [bold]{announcement.id}[/] (revision {revision.number}, "
        f"{announcement.state}, hash {revision.content_hash[:12]}) for "
        f"{', '.join(revision.content.targets)}.\n"
        f"Next: broadcaster preview {announcement.id}, then broadcaster submit {announcement.id}"
    )


def _print_preview(result: Preview) -> None:
    from rich.markup import escape
    from rich.rule import Rule

    console = stdout()
    for item in result.targets:
        console.print(Rule(f"{item.target} ({item.channel})", align="left"))
        _print_rendered(console, item.to_json())
        for error in item.errors:
            console.print(f"[bold red]error:[/] {escape(error)}")
    problems = result.problems()
    summary = f"{len(problems)} problem(s)" if problems else "no problems"
    console.print(Rule(f"revision {result.announcement.revision.number}: {summary}"))


def _print_rendered(console: Any, document: dict[str, Any]) -> None:
    from rich.markup import escape

    if "text" in document:
        console.print(escape(document["text"]))
    if "card" in document:
        console.print_json(data=document["card"])
    for name, content in (document.get("files") or {}).items():
        console.print(f"  {name}  ({len(content.encode())} bytes)")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(draft)
    app.command()(edit)
    app.command("list")(list_)
    app.command()(preview)
    app.command()(submit)
    app.command()(cancel)
