"""Writing announcements: draft, edit (a new revision), submit for approval, cancel."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from broadcaster.app import App
from broadcaster.approval import APPROVE, Eligibility, eligibility_of
from broadcaster.approval_card_queue import queue_card
from broadcaster.errors import ApprovalError, InputError, RenderError, StateError
from broadcaster.model import (
    Announcement,
    AnnouncementState,
    ChannelName,
    Content,
    Severity,
    check_transition,
)
from broadcaster.preview import preview_announcement
from broadcaster.store.announcements import (
    add_revision,
    create_announcement,
    get_announcement,
    set_state,
)
from broadcaster.store.approval_cards import card_of
from broadcaster.store.approvals import decisions_for
from broadcaster.store.audit import record_event
from broadcaster.targets import resolve_targets
from broadcaster.text import check_text, normalise_newlines

__all__ = ["DraftInput", "EditInput", "cancel", "create_draft", "edit", "submit"]

MAX_TITLE = 200
MAX_BODY = 20_000
#: A body file may hold this many bytes (UTF-16 takes up to four per character, plus a BOM).
MAX_BODY_BYTES = 4 * MAX_BODY + 4
# The same rule as the workspace's own [broadcaster] language: a language code, not a path.
_LANGUAGE = re.compile(r"[a-z]{2,3}")
MAX_REASON = 500
OVERRIDABLE_CHANNELS = tuple(ChannelName)
_EDITABLE = (
    AnnouncementState.DRAFT,
    AnnouncementState.PENDING_APPROVAL,
    AnnouncementState.APPROVED,
    AnnouncementState.REJECTED,
)


@dataclass(frozen=True, kw_only=True)
class DraftInput:
    """What the officer typed for a new announcement."""

    title: str
    body: str
    severity: Severity = Severity.INFO
    language: str | None = None
    link: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    to: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EditInput:
    """Changes for a new revision; None leaves a field as it was."""

    title: str | None = None
    body: str | None = None
    severity: Severity | None = None
    language: str | None = None
    link: str | None = None
    overrides: dict[str, str] | None = None
    to: tuple[str, ...] | None = None


def create_draft(
    app: App, actor: str, draft: DraftInput, *, proof: Mapping[str, Any] | None = None
) -> Announcement:
    """Store a new announcement as a draft (revision 1); ``proof`` of the author is audited."""
    content = Content(
        title=_clean(draft.title),
        body=_clean(draft.body),
        severity=draft.severity,
        language=draft.language or app.config.broadcaster.language,
        link=draft.link or None,
        overrides={channel: _clean(text) for channel, text in draft.overrides.items()},
        targets=resolve_targets(app.config, draft.to),
    )
    _validate(content)
    now = app.clock()
    with app.store.write() as conn:
        announcement_id = create_announcement(conn, content, actor, now)
        record_event(
            conn,
            actor=actor,
            action="drafted",
            now=now,
            announcement_id=announcement_id,
            revision=1,
            content_hash=content.content_hash(),
            targets=list(content.targets),
            **({"proof": dict(proof)} if proof is not None else {}),
        )
        return get_announcement(conn, announcement_id)


def edit(
    app: App,
    actor: str,
    announcement_id: int,
    changes: EditInput,
    *,
    proof: Mapping[str, Any] | None = None,
) -> Announcement:
    """Add a revision with ``changes``; the announcement returns to draft, approvals are void.

    ``proof`` says how ``actor`` was shown to be who they are (kept in the audit event).
    """
    now = app.clock()
    with app.store.write() as conn:
        current = get_announcement(conn, announcement_id, lock=True)
        if current.state == AnnouncementState.DISPATCHING:
            raise StateError(
                f"announcement {announcement_id} is dispatching; if its send is scheduled, "
                f"take it back first (`broadcaster send {announcement_id} --cancel`), then edit"
            )
        if current.state not in _EDITABLE:
            raise StateError(
                f"announcement {announcement_id} is {current.state}; "
                "what was sent is changed with a correction or retraction, not an edit"
            )
        content = _apply(app, current.revision.content, changes)
        _validate(content)
        if content == current.revision.content:
            raise InputError("nothing to change: the new revision would be identical")
        voids = current.state in (AnnouncementState.PENDING_APPROVAL, AnnouncementState.APPROVED)
        decisions = decisions_for(conn, current.revision.id) if voids else []
        voided = [d.person for d in decisions if d.decision == APPROVE]
        number = current.revision.number + 1
        add_revision(conn, announcement_id, number, content, actor, now)
        set_state(
            conn,
            announcement_id,
            current.state,
            AnnouncementState.DRAFT,
            now,
            current_revision=number,
        )
        if card_of(conn, announcement_id) is not None:
            queue_card(conn, app.config, announcement_id, now)  # the card says it was edited
        record_event(
            conn,
            actor=actor,
            action="edited",
            now=now,
            announcement_id=announcement_id,
            revision=number,
            content_hash=content.content_hash(),
            previous_state=str(current.state),
            approvals_voided=voids,
            voided_approvals=voided,
            **({"proof": dict(proof)} if proof is not None else {}),
        )
        return get_announcement(conn, announcement_id)


def submit(app: App, actor: str, announcement_id: int) -> Announcement:
    """Ask for approval; refused while any target's output fails to render, or while too few
    approvers may approve it (a request nobody can grant would wait forever)."""
    policy = app.config.approval
    with app.store.read() as conn:
        draft = get_announcement(conn, announcement_id)
        allowed = eligibility_of(conn, policy, announcement_id)
    check_transition(draft.state, AnnouncementState.PENDING_APPROVAL)
    if not allowed.possible:
        raise ApprovalError(_never_approvable(draft, allowed))
    problems = preview_announcement(app, draft).problems()
    if problems:
        raise RenderError("cannot submit while the preview has errors:\n" + "\n".join(problems))
    return _transition(app, actor, draft, AnnouncementState.PENDING_APPROVAL, "submitted")


def _never_approvable(draft: Announcement, allowed: Eligibility) -> str:
    count = len(allowed.eligible)
    text = (
        f"announcement {draft.id} was not submitted: it could never be approved. It needs "
        f"{allowed.required} approval(s), and only {count} approver(s) may give one: "
        f"{', '.join(allowed.eligible) or 'nobody'}"
    )
    if allowed.excluded():
        text += f" ({', '.join(allowed.excluded())} wrote or edited it)"
    return text + (
        ".\nAdd an approver to [approval] approvers in broadcaster.toml "
        "(or lower [approval] required), then submit again."
    )


def cancel(app: App, actor: str, announcement_id: int, reason: str | None = None) -> Announcement:
    """Withdraw an announcement that has not been dispatched; the reason is kept in the log."""
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise InputError(f"--reason is {len(reason)} characters; at most {MAX_REASON}")
    if reason is not None:
        check_text("reason", reason, lines=False)
    with app.store.read() as conn:
        current = get_announcement(conn, announcement_id)
    details = {} if reason is None else {"reason": reason}
    return _transition(app, actor, current, AnnouncementState.CANCELLED, "cancelled", **details)


def _transition(
    app: App,
    actor: str,
    seen: Announcement,
    wanted: AnnouncementState,
    action: str,
    **details: str,
) -> Announcement:
    check_transition(seen.state, wanted)
    now = app.clock()
    with app.store.write() as conn:
        # Compare-and-set against the state and revision this command looked at.
        current = get_announcement(conn, seen.id, lock=True)
        if current.revision.number != seen.revision.number:
            raise StateError(f"announcement {seen.id} was edited meanwhile; look again")
        set_state(conn, seen.id, seen.state, wanted, now)
        if wanted == AnnouncementState.PENDING_APPROVAL or card_of(conn, seen.id) is not None:
            queue_card(conn, app.config, seen.id, now)  # the card shows it (or is posted)
        record_event(
            conn,
            actor=actor,
            action=action,
            now=now,
            announcement_id=seen.id,
            revision=seen.revision.number,
            content_hash=seen.revision.content_hash,
            **details,
        )
        return get_announcement(conn, seen.id)


def _apply(app: App, content: Content, changes: EditInput) -> Content:
    updates: dict[str, object] = {
        name: value
        for name, value in dataclasses.asdict(changes).items()
        if value is not None and name != "to"
    }
    for name in ("title", "body"):
        if name in updates:
            updates[name] = _clean(str(updates[name]))
    if changes.overrides is not None:
        updates["overrides"] = {c: _clean(text) for c, text in changes.overrides.items()}
    if changes.link == "":
        updates["link"] = None
    if changes.to is not None:
        updates["targets"] = resolve_targets(app.config, changes.to)
    return dataclasses.replace(content, **updates)  # type: ignore[arg-type]


def _check_characters(content: Content) -> None:
    # Checked first, and alone: a control character makes the other messages (and every
    # subscriber's feed) unreadable.
    check_text("title", content.title, lines=False)
    check_text("body", content.body, lines=True)
    if content.link is not None:
        check_text("link", content.link, lines=False)
    for channel, text in content.overrides.items():
        if channel in OVERRIDABLE_CHANNELS:  # an unknown one is reported by _validate
            check_text(f"--override {channel} text", text, lines=True)


def _clean(text: str) -> str:
    """What people typed, with Windows line endings made plain and outer blanks dropped."""
    return normalise_newlines(text).strip()


def _validate(content: Content) -> None:
    _check_characters(content)
    problems = []
    if not _LANGUAGE.fullmatch(content.language):
        problems.append(
            f"--language {content.language[:20]!r} is not a language code (e.g. sv, en, fi)"
        )
    if not content.title:
        problems.append("the title is empty")
    elif len(content.title) > MAX_TITLE or "\n" in content.title:
        problems.append(f"the title must be one line of at most {MAX_TITLE} characters")
    if not content.body:
        problems.append("the body is empty")
    elif len(content.body) > MAX_BODY:
        problems.append(f"the body is {len(content.body)} characters; at most {MAX_BODY}")
    if content.link is not None:
        parts = urlsplit(content.link)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in content.link:
            problems.append(f"--link {content.link!r} is not an http(s) address")
    problems += [
        f"--override {channel}: unknown channel (use one of {', '.join(OVERRIDABLE_CHANNELS)})"
        for channel in content.overrides
        if channel not in OVERRIDABLE_CHANNELS
    ]
    if problems:
        raise InputError("; ".join(problems))
