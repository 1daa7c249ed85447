"""``broadcaster approve`` and ``broadcaster reject`` (the same policy as the Teams card)."""

from __future__ import annotations

from typing import Annotated

import typer

from broadcaster.cli._common import AsOption, JsonOption, emit_result, state

__all__ = ["register"]

HashOption = Annotated[
    str | None,
    typer.Option(
        "--hash",
        metavar="SHA256",
        help="Decide only if the content still has this hash (from preview/status --json).",
    ),
]


def approve(
    ctx: typer.Context,
    announcement_id: Annotated[int, typer.Argument(metavar="ID")],
    expected_hash: HashOption = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve the current revision of an announcement."""
    from broadcaster.approval import approve as approve_announcement

    cli = state(ctx)
    outcome = approve_announcement(
        cli.app(), cli.person(as_), announcement_id, expected_hash=expected_hash
    )
    count = f"{len(outcome.approved_by)} of {outcome.required}"
    if not outcome.counted:
        message = f"You had already approved this revision ({count} approvals)."
    elif outcome.complete:
        message = (
            f"Approved ({count}): announcement {announcement_id} may now be sent "
            f"with `broadcaster send {announcement_id}`."
        )
    else:
        message = f"Approval recorded ({count}); waiting for more."
    announcement = outcome.announcement
    document = {
        "id": announcement.id,
        "revision": announcement.revision.number,
        "state": str(announcement.state),
        "content_hash": announcement.revision.content_hash,
        "approved_by": outcome.approved_by,
        "required": outcome.required,
        "counted": outcome.counted,
        "complete": outcome.complete,
    }
    emit_result(as_json, document, message)


def reject(
    ctx: typer.Context,
    announcement_id: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="What must change.")],
    expected_hash: HashOption = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject the current revision, saying why."""
    from broadcaster.approval import reject as reject_announcement

    cli = state(ctx)
    reject_announcement(
        cli.app(), cli.person(as_), announcement_id, reason, expected_hash=expected_hash
    )
    emit_result(
        as_json,
        {"id": announcement_id, "state": "rejected"},
        f"Announcement {announcement_id} is rejected; its author can edit it.",
    )


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(approve)
    app.command()(reject)
