"""``broadcaster approve`` and ``broadcaster reject`` (the same policy as the Teams card)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from broadcaster.cli._common import (
    AsOption,
    CliState,
    IdArgument,
    JsonOption,
    audit_refusal,
    emit_json,
    emit_result,
    state,
    stdout,
)

if TYPE_CHECKING:
    from broadcaster.approval_record import ApprovalRecord
    from broadcaster.approver_proof import Decider
    from broadcaster.store.approvals import Decision

__all__ = ["approval_lines", "register"]

HashOption = Annotated[
    str | None,
    typer.Option(
        "--hash",
        metavar="SHA256",
        help="Decide only if the content still has this hash, or a unique prefix of it of at "
        "least 7 characters (from preview, show or status).",
    ),
]
SignatureOption = Annotated[
    Path | None,
    typer.Option(
        "--signature",
        metavar="FILE",
        help="Prove who you are with an OpenSSH signature (namespace broadcaster) of the "
        "words 'approve ID HASH' (or 'reject ID HASH'; the full content hash), without a "
        "newline.",
    ),
]
SignWithOption = Annotated[
    Path | None,
    typer.Option(
        "--sign-with",
        metavar="KEY",
        help="Sign the decision now with this SSH key (e.g. ~/.ssh/id_ed25519); OpenSSH asks "
        "for its passphrase.",
    ),
]


def approve(
    ctx: typer.Context,
    announcement_id: IdArgument,
    expected_hash: HashOption = None,
    as_: AsOption = None,
    signature: SignatureOption = None,
    sign_with: SignWithOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve the current revision of an announcement.

    Who approves must be proven: by the OS account running the command, by an SSH signature of
    'approve ID HASH' (--signature or --sign-with), or by [approval] trust_cli_names (an
    exercise). See the README, "Who approves at the command line".
    """
    from broadcaster.approval import APPROVE
    from broadcaster.approval import approve as approve_announcement

    cli = state(ctx)
    decider = _decider(cli, as_, announcement_id, APPROVE, expected_hash, signature, sign_with)
    outcome = approve_announcement(
        cli.app(),
        decider.person,
        announcement_id,
        expected_hash=decider.expected_hash,
        proof=decider.proof,
    )
    count = f"{len(outcome.approved_by)} of {outcome.required}"
    revision = outcome.announcement.revision
    signed = f"revision {revision.number}, hash {revision.content_hash[:12]}"
    if not outcome.counted:
        message = f"You had already approved {signed} ({count} approvals)."
    elif outcome.sending:
        message = (
            f"Approved ({count}, {signed}): announcement {announcement_id} is being sent now "
            f"(the approval policy sends on approval); follow it with "
            f"`broadcaster status {announcement_id}`."
        )
    elif outcome.not_sent is not None:
        message = (
            f"Approved ({count}, {signed}), but not sent: {outcome.not_sent}. Fix that, then "
            f"`broadcaster send {announcement_id}`."
        )
    elif outcome.complete:
        message = (
            f"Approved ({count}, {signed}): announcement {announcement_id} may now be sent "
            f"with `broadcaster send {announcement_id}`."
        )
    else:
        message = f"Approval of {signed} recorded ({count}); waiting for more."
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
        "proof": decider.proof,
        "sending": outcome.sending,
    }
    emit_result(as_json, document, message + _proof_sentence(decider))


def reject(
    ctx: typer.Context,
    announcement_id: IdArgument,
    reason: Annotated[str, typer.Option("--reason", "-r", help="What must change.")],
    expected_hash: HashOption = None,
    as_: AsOption = None,
    signature: SignatureOption = None,
    sign_with: SignWithOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject the current revision, saying why.

    Who rejects is proven as for approve (OS account, SSH signature, or trust_cli_names).
    """
    from broadcaster.approval import REJECT
    from broadcaster.approval import reject as reject_announcement

    cli = state(ctx)
    decider = _decider(cli, as_, announcement_id, REJECT, expected_hash, signature, sign_with)
    reject_announcement(
        cli.app(),
        decider.person,
        announcement_id,
        reason,
        expected_hash=decider.expected_hash,
        proof=decider.proof,
    )
    emit_result(
        as_json,
        {"id": announcement_id, "state": "rejected", "proof": decider.proof},
        f"Announcement {announcement_id} is rejected; its author can edit it. "
        f"Your reason is shown in `broadcaster status {announcement_id}` and in the list."
        + _proof_sentence(decider),
    )


def _decider(
    cli: CliState,
    as_: str | None,
    announcement_id: int,
    decision: str,
    expected_hash: str | None,
    signature: Path | None,
    sign_with: Path | None,
) -> Decider:
    """The proven approver of this command; a refusal is audited before it is reported."""
    from broadcaster.approver_proof import prove_decider
    from broadcaster.errors import IdentityError

    who = cli.claim(as_)
    app = cli.app()
    try:
        return prove_decider(
            app,
            who,
            announcement_id,
            decision=decision,
            expected_hash=expected_hash,
            signature_file=signature,
            sign_with=sign_with.expanduser() if sign_with else None,
        )
    except IdentityError as exc:
        audit_refusal(app, who, f"{decision} announcement {announcement_id}", exc, announcement_id)
        raise


def _to_sign(record: ApprovalRecord) -> dict[str, str] | None:
    """The messages an approver signs for this revision, while it waits for approval."""
    from broadcaster.approval import APPROVE, REJECT
    from broadcaster.approver_proof import signed_message
    from broadcaster.model import AnnouncementState

    if not record.is_current or record.announcement.state != AnnouncementState.PENDING_APPROVAL:
        return None
    digest, number = record.revision.content_hash, record.announcement.id
    return {d: signed_message(d, number, digest) for d in (APPROVE, REJECT)}


def _proof_sentence(decider: Decider) -> str:
    """`` Proven by ...``: how the decision's person was proven, as the record keeps it."""
    from rich.markup import escape

    from broadcaster.identity import describe_proof

    words = describe_proof(decider.proof)
    return f"\n{escape(words[:1].upper() + words[1:])}."


def show(
    ctx: typer.Context,
    announcement_id: IdArgument,
    revision: Annotated[
        int | None,
        typer.Option(
            "--revision",
            min=1,
            max=2**31 - 1,
            help="An earlier revision (default: the current one).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The exact text of a revision, its content hash, and who approved it when."""
    from broadcaster.approval_record import approval_record
    from broadcaster.state_notes import state_notes
    from broadcaster.store.announcements import get_announcement

    app = state(ctx).app()
    with app.store.read() as conn:
        announcement = get_announcement(conn, announcement_id)
        record = approval_record(conn, announcement, app.config.approval.required, revision)
        note = state_notes(conn, [announcement]).get(announcement.id)
    to_sign = _to_sign(record)
    if as_json:
        emit_json(
            {**record.to_json(), "note": note.to_json() if note else None, "to_sign": to_sign}
        )
        return
    from broadcaster.rendering.readable import wrap_text

    text = _show_text(record, app.config.broadcaster.timezone)
    if note is not None:
        why = f"Why {announcement.state}: {note.text()}"
        if note.kind == "approvals_voided" and note.revision:
            why += (
                f"\nThe text they approved: broadcaster show {announcement.id} "
                f"--revision {note.revision - 1}"
            )
        text += "\n\n" + wrap_text(why, width=78)
    if to_sign:
        text += (
            "\n\nTo decide with an SSH signature, sign one of these lines, without a newline:\n"
            + "\n".join(f"  {m}" for m in to_sign.values())
        )
    stdout().print(text, markup=False)


def approval_lines(record: ApprovalRecord, timezone: str) -> str:
    """Revision, full hash and approvals: the top of ``show`` and ``preview``."""
    from broadcaster.rendering.readable import wrap_text
    from broadcaster.timeutil import format_local

    revision = record.revision
    lines = [f"Revision {revision.number}, content hash:", f"  {revision.content_hash}"]
    if not record.hash_verified:
        lines.append(
            "WARNING: the stored text does not match this hash; it is not what was signed."
        )
    approvals = record.approvals
    if record.approved:
        lines.append(f"Approved ({len(approvals)} of {record.required} required) by:")
    elif approvals:
        lines.append(f"Approvals so far ({len(approvals)} of {record.required} required):")
    for decision in approvals:
        when = format_local(decision.decided_at, timezone)
        lines.append(f"  {decision.person}, {when}, via {decision.via}{_proven(decision)}")
    for decision in record.rejections:
        when = format_local(decision.decided_at, timezone)
        lines.append(f"Rejected by {decision.person}, {when}{_proven(decision)}: {decision.reason}")
    if not record.is_current:
        current = record.announcement.revision.number
        lines.append(f"(An older revision: the current one is revision {current}.)")
    elif not (approvals or record.rejections):
        lines.append(f"Not approved yet ({record.announcement.state}).")
    return wrap_text("\n".join(lines), width=78)


def _proven(decision: Decision) -> str:
    """`` (proven by ...)``: how the decider was shown to be who they said; "" before proofs."""
    from broadcaster.identity import describe_proof

    return f" ({describe_proof(decision.proof)})" if decision.proof else ""


def _show_text(record: ApprovalRecord, timezone: str) -> str:
    from broadcaster.timeutil import format_local

    announcement = record.announcement
    revision = record.revision
    content = revision.content
    lines = [
        f"Announcement {announcement.id}: {announcement.state}",
        approval_lines(record, timezone),
        "",
        f"Written by {revision.author}, {format_local(revision.created_at, timezone)}",
        f"Title:     {content.title}",
        f"Severity:  {content.severity}",
        f"Language:  {content.language}",
        f"Link:      {content.link or '-'}",
        f"Targets:   {', '.join(content.targets)}",
    ]
    if content.kind != "original":
        lines.append(f"Kind:      {content.kind}")
    for channel, text in sorted(content.overrides.items()):
        lines.append(f"Override:  {channel} = {text}")
    lines += ["", "Body (as stored and hashed, indented by two spaces):", ""]
    lines += [f"  {line}" if line else "" for line in content.body.splitlines()]
    if record.is_current:
        lines += ["", f"What readers see: broadcaster preview {announcement.id}"]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command()(approve)
    app.command()(reject)
    app.command()(show)
