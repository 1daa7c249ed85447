"""Writing announcements: ``draft``, ``edit``, ``list``, ``preview``, ``submit``, ``cancel``."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from broadcaster.cli._common import (
    AsOption,
    IdArgument,
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
    from broadcaster.app import App
    from broadcaster.approval import Eligibility
    from broadcaster.model import Announcement
    from broadcaster.preview import Preview, TargetPreview

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
LanguageOption = Annotated[
    str | None,
    typer.Option(
        "--language", help="A language code such as sv (default: [broadcaster] language, sv)."
    ),
]
# edit keeps what the revision had for every option not given
EditToOption = Annotated[
    list[str] | None,
    typer.Option("--to", metavar="TARGET|GROUP", help="Repeatable; default: unchanged."),
]
EditLanguageOption = Annotated[
    str | None, typer.Option("--language", help="A language code; default: unchanged.")
]
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
    author, proof = cli.proven_person(as_, "write a draft")
    announcement = create_draft(cli.app(), author, draft_input, proof=proof)
    _report_revision(announcement, "Drafted", as_json)


def edit(
    ctx: typer.Context,
    announcement_id: IdArgument,
    title: TitleOption = None,
    body: BodyOption = None,
    body_file: BodyFileOption = None,
    severity: Annotated[Severity | None, typer.Option("--severity", "-s")] = None,
    to: EditToOption = None,
    link: Annotated[
        str | None, typer.Option("--link", help="An http(s) link; '' removes it.")
    ] = None,
    language: EditLanguageOption = None,
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
    app = cli.app()
    author, proof = cli.proven_person(as_, f"edit announcement {announcement_id}", announcement_id)
    announcement = edit_announcement(app, author, announcement_id, changes, proof=proof)
    _report_edit(app, announcement, as_json)


def list_(
    ctx: typer.Context,
    state_filter: Annotated[
        AnnouncementState | None, typer.Option("--state", help="Only this state.")
    ] = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List announcements, newest first."""
    from broadcaster.reports import announcement_list

    document = announcement_list(state(ctx).app(), state_filter)
    if as_json:
        emit_json(document)
        return
    # Not needed for --json, which scripts call often.
    from rich.markup import escape

    from broadcaster.cli.status_view import state_cell
    from broadcaster.cli.tables import Column, Fit, print_table, short_list

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
            state_cell(row),
            str(row["revision"]),
            row["severity"],
            escape(row["title"]),
            escape(row["author"]),
            short_list(row["targets"], wide=wide),
        ]
        for row in document["announcements"]
    ]
    console = stdout()
    print_table(console, columns, rows, wide=wide)
    # The reason behind a state, short, under the table (a column would not fit 80 columns);
    # `status ID` prints it whole.
    for row in document["announcements"]:
        if row["note"]:
            console.print(f"#{row['id']} {row['note']['short']}", markup=False)


def preview(
    ctx: typer.Context,
    announcement_id: IdArgument,
    target: Annotated[str | None, typer.Option("--target", help="Only this target.")] = None,
    files: Annotated[
        bool, typer.Option("--files", help="Also list the files a target writes (website).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show what each target's readers will see; exit 2 if any of it cannot be sent."""
    from broadcaster.approval_record import approval_record
    from broadcaster.preview import preview_announcement
    from broadcaster.store.announcements import get_announcement

    app = state(ctx).app()
    with app.store.read() as conn:
        announcement = get_announcement(conn, announcement_id)
        record = approval_record(conn, announcement, app.config.approval.required)
    result = preview_announcement(app, announcement, target, approval=record)
    if as_json:
        emit_json(result.to_json())
    else:
        _print_preview(result, app.config.broadcaster.timezone, files=files)
    if result.problems():
        raise typer.Exit(2)


def submit(
    ctx: typer.Context,
    announcement_id: IdArgument,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask for approval of the current revision (refused if it could never be approved)."""
    from broadcaster.authoring import submit as submit_announcement

    cli = state(ctx)
    app = cli.app()
    announcement = submit_announcement(app, cli.person(as_), announcement_id)
    allowed = _eligibility(app, announcement.id)
    from broadcaster.approval_card_queue import cards_enabled

    teams = cards_enabled(app.config)
    where = (
        "An approval card goes to the approvers' Teams channel (the worker posts it)."
        if teams
        else "Approvals happen at the command line (`broadcaster approve`): no Teams card "
        "without a \\[teams_bot] section and \\[approval] teams_channel_id."
    )
    emit_result(
        as_json,
        {
            "id": announcement.id,
            "revision": announcement.revision.number,
            "state": str(announcement.state),
            "content_hash": announcement.revision.content_hash,
            "required": allowed.required,
            "approvers": allowed.approvers,
            "eligible_approvers": allowed.eligible,
            "teams_card": teams,
        },
        f"Announcement {announcement.id} (revision {announcement.revision.number}, hash "
        f"{announcement.revision.content_hash[:12]}) is waiting for {allowed.who()}.\n{where}",
    )


def cancel(
    ctx: typer.Context,
    announcement_id: IdArgument,
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", help="Why; shown in status and list."),
    ] = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw an announcement that has not been sent."""
    from broadcaster.authoring import cancel as cancel_announcement

    cli = state(ctx)
    announcement = cancel_announcement(cli.app(), cli.person(as_), announcement_id, reason)
    given = (reason or "").strip() or None
    if as_json:
        emit_json({"id": announcement.id, "state": str(announcement.state), "reason": given})
        return
    why = f" Reason: {given}" if given else ""
    stdout().print(f"Announcement {announcement.id} is cancelled.{why}", markup=False)


def _read_body(body: str | None, body_file: Path | None, *, required: bool) -> str | None:
    if body is not None and body_file is not None:
        raise InputError("give --body or --body-file, not both")
    if body is not None:
        return body
    if body_file is not None:
        from broadcaster.authoring import MAX_BODY_BYTES
        from broadcaster.text import read_text_file, read_text_stream

        if str(body_file) == "-":
            stream = getattr(sys.stdin, "buffer", None)
            if stream is None:  # a text-only stdin (some test runners): already decoded
                return sys.stdin.read(MAX_BODY_BYTES)
            return read_text_stream(stream, "standard input", MAX_BODY_BYTES)
        return read_text_file(body_file, "--body-file", MAX_BODY_BYTES)
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


def _revision_json(announcement: Announcement) -> dict[str, Any]:
    revision = announcement.revision
    return {
        "id": announcement.id,
        "revision": revision.number,
        "state": str(announcement.state),
        "content_hash": revision.content_hash,
        "targets": list(revision.content.targets),
    }


def _eligibility(app: App, announcement_id: int) -> Eligibility:
    from broadcaster.approval import eligibility_of

    with app.store.read() as conn:
        return eligibility_of(conn, app.config.approval, announcement_id)


def _report_edit(app: App, announcement: Announcement, as_json: bool) -> None:
    """The new revision, and whether this edit voided approvals (and who must approve now)."""
    from broadcaster.state_notes import state_notes

    with app.store.read() as conn:
        note = state_notes(conn, [announcement]).get(announcement.id)
    allowed = _eligibility(app, announcement.id)
    if as_json:
        emit_json(
            {
                **_revision_json(announcement),
                "approvals_voided": note is not None,
                "voided_approvals": note.voided_approvals if note else [],
                "note": note.to_json() if note else None,
                "required": allowed.required,
                "eligible_approvers": allowed.eligible,
            }
        )
        return
    _report_revision(announcement, "Edited", as_json=False)
    if note is not None:
        number = announcement.revision.number
        whose = ", ".join(note.voided_approvals) or "none had been given yet"
        message = (
            f"Earlier approvals were voided by this edit (revision {number - 1}: {whose}). "
            f"Revision {number} must be approved again: submit it "
            f"(broadcaster submit {announcement.id}); it then needs {allowed.who()}."
        )
        stdout().print(textwrap.fill(message, 78), markup=False)


def _report_revision(announcement: Announcement, verb: str, as_json: bool) -> None:
    revision = announcement.revision
    if as_json:
        emit_json(_revision_json(announcement))
        return
    stdout().print(
        f"{verb} announcement [bold]{announcement.id}[/] (revision {revision.number}, "
        f"{announcement.state}, hash {revision.content_hash[:12]}) for "
        f"{', '.join(revision.content.targets)}.\n"
        f"Next: broadcaster preview {announcement.id}, then broadcaster submit {announcement.id}"
    )


def _print_preview(result: Preview, timezone: str, *, files: bool) -> None:
    from rich.markup import escape
    from rich.rule import Rule

    from broadcaster.cli.approval_cmds import approval_lines

    console = stdout()
    if result.approval is not None:
        console.print(approval_lines(result.approval, timezone), markup=False)
    for item in result.targets:
        console.print(Rule(escape(f"{item.target} ({item.channel})"), align="left"))
        _print_target(console, item, files=files)
        for error in item.errors:
            console.print(f"[bold red]error:[/] {escape(error)}")
    problems = result.problems()
    summary = f"{len(problems)} problem(s)" if problems else "no problems"
    console.print(Rule(f"revision {result.announcement.revision.number}: {summary}"))
    if not files and any(item.rendered and item.rendered.files for item in result.targets):
        console.print("The files each target writes: add --files.", style="dim")


def _print_target(console: Any, item: TargetPreview, *, files: bool) -> None:
    from broadcaster.rendering.readable import wrap_text

    if item.text is not None:
        console.print(wrap_text(item.text).rstrip("\n"), markup=False)
    rendered = item.rendered
    if rendered is not None and rendered.card is not None:
        console.print_json(data=rendered.card)
    if item.sms is not None:
        console.print("\n" + "\n".join(item.sms.lines()), markup=False)
    if files and rendered is not None:
        for name, content in (rendered.files or {}).items():
            console.print(f"  {name}  ({len(content.encode())} bytes)", markup=False)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(draft)
    app.command()(edit)
    app.command("list")(list_)
    app.command()(preview)
    app.command()(submit)
    app.command()(cancel)
