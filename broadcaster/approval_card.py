"""The approval card: an Adaptive Card 1.5 that shows an update to its approvers in Teams.

Built as data from a :class:`CardView` (what the card must say), never from a template: it is our
interface, not the municipality's, and a workspace must not be able to drop the hash from it.

What people typed (title, body, a rejection's reason, names) goes into ``TextRun`` inlines of a
``RichTextBlock``, which Teams shows as plain text (a ``TextBlock`` would read markdown), and
``{{`` is broken with a zero-width space so Teams does not read it as a date function. The
buttons are ``Action.Execute`` (Universal Actions) carrying the announcement id, revision and
content hash the approver saw, with an ``Action.Submit`` fallback for older clients; ``refresh``
asks the bot for the card as it stands whenever someone opens it. A decided card has no buttons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from broadcaster.model import AnnouncementState

__all__ = [
    "APPROVE_VERB",
    "MAX_REASON",
    "REFRESH_VERB",
    "REJECT_VERB",
    "CardDecision",
    "CardView",
    "ChannelLine",
    "action_data",
    "build_card",
    "plain",
]

APPROVE_VERB = "approve"
REJECT_VERB = "reject"
REFRESH_VERB = "refresh"
#: The input that carries a rejection's reason.
REASON_INPUT = "reason"
#: The longest rejection reason a card takes (it is shown on the card to everyone).
MAX_REASON = 500
#: ``refresh.userIds`` holds at most this many users (Teams' limit).
MAX_REFRESH_USERS = 60
_S = AnnouncementState
_SEVERITY_COLOUR = {"crisis": "Attention", "important": "Warning"}
_SENDING = (_S.DISPATCHING, _S.SENT, _S.PARTIALLY_FAILED)
_SENT = {
    _S.DISPATCHING: "Being sent.",
    _S.SENT: "Sent.",
    _S.PARTIALLY_FAILED: "Sent, but some deliveries failed (see `broadcaster status`).",
}


@dataclass(frozen=True, kw_only=True)
class ChannelLine:
    """What one target will get, in a line."""

    target: str
    channel: str
    summary: str


@dataclass(frozen=True, kw_only=True)
class CardDecision:
    """An approval or rejection shown on the card."""

    person: str
    decided_at: datetime
    via: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class CardView:
    """Everything the card shows: one revision of an announcement and where it stands."""

    announcement_id: int
    #: The revision the card is about (a card is bound to one revision).
    revision: int
    content_hash: str
    title: str
    body: str
    severity: str
    targets: tuple[str, ...]
    author: str
    #: The announcement's state now.
    state: AnnouncementState
    #: The announcement's current revision (another one than ``revision``: it was edited).
    current_revision: int
    required: int
    approvals: tuple[CardDecision, ...] = ()
    rejection: CardDecision | None = None
    channels: tuple[ChannelLine, ...] = ()
    timezone: str = "Europe/Stockholm"
    exercise: bool = False
    #: Why a click was refused, shown in red to the person who clicked (None: no notice).
    refusal: str | None = None
    #: Teams user ids (MRIs) whose clients refresh the card by themselves. Empty: omitted, and
    #: then Teams refreshes it for everyone in a conversation of up to 60 people (an approvers'
    #: channel); in a larger one only for those listed, the others refresh by hand.
    refresh_users: tuple[str, ...] = field(default_factory=tuple)

    @property
    def decided(self) -> bool:
        """True when the card takes no more decisions (approved, rejected, edited, cancelled)."""
        return self.state != _S.PENDING_APPROVAL or self.current_revision != self.revision


def plain(text: str) -> str:
    """``text`` as Teams will show it literally (``{{`` is not read as a date function)."""
    return text.replace("{{", "{\u200b{").replace("}}", "}\u200b}")


def action_data(view: CardView) -> dict[str, Any]:
    """What every button carries: the revision the approver saw, by id, number and hash."""
    return {
        "broadcaster": "approval",
        "announcement": view.announcement_id,
        "revision": view.revision,
        "hash": view.content_hash,
    }


def build_card(view: CardView) -> dict[str, Any]:
    """The card for ``view`` (valid against the Adaptive Card 1.5 schema)."""
    body: list[dict[str, Any]] = []
    if view.exercise:
        body.append(_text("EXERCISE - not a real announcement", color="Attention", bold=True))
    if view.refusal is not None:
        body.append(_notice(view.refusal))
    body += [
        _text(
            f"Approval of announcement {view.announcement_id} · {view.severity.upper()}",
            color=_SEVERITY_COLOUR.get(view.severity, "Accent"),
            bold=True,
            size="Small",
        ),
        _rich(view.title, size="Large", bold=True),
        _status(view),
        {"type": "FactSet", "facts": _facts(view)},
        _rich(view.body),
    ]
    if view.channels:
        body.append(_text("What each channel will get", bold=True, separator=True))
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": plain(f"{c.target} ({c.channel})"), "value": plain(c.summary)}
                    for c in view.channels
                ],
            }
        )
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "msteams": {"width": "Full"},
        "fallbackText": plain(
            f"Approval of announcement {view.announcement_id}: {view.title} "
            f"(revision {view.revision}, hash {view.content_hash[:12]})"
        ),
        "refresh": _refresh(view),
        "body": body,
    }
    if not view.decided:
        card["actions"] = _actions(view)
    return card


def _facts(view: CardView) -> list[dict[str, str]]:
    return [
        {"title": "Severity", "value": view.severity},
        {"title": "Targets", "value": plain(", ".join(view.targets) or "none")},
        {"title": "Author", "value": plain(view.author)},
        {
            "title": "Revision",
            "value": f"{view.revision}, hash {view.content_hash[:12]}",
        },
    ]


def _status(view: CardView) -> dict[str, Any]:
    """Where the decision stands: approvals so far, rejected and why, approved and sending."""
    zone = ZoneInfo(view.timezone)

    def when(decision: CardDecision) -> str:
        local = decision.decided_at.astimezone(zone)
        return f"{local.day} {local:%b %H:%M}"

    approvals = "; ".join(f"{d.person} {when(d)} ({d.via})" for d in view.approvals)
    count = f"{len(view.approvals)} of {view.required}"
    if view.current_revision != view.revision:
        line, colour = (
            f"Edited: revision {view.current_revision} replaces this one; decide on its card",
            "Warning",
        )
    elif view.rejection is not None and view.state == _S.REJECTED:
        r = view.rejection
        line, colour = f"Rejected by {r.person} {when(r)}: {r.reason}", "Attention"
    elif view.state == _S.PENDING_APPROVAL:
        line = f"Waiting: {count} approvals" + (f": {approvals}" if approvals else "")
        colour = "Default"
    elif view.state == _S.APPROVED:
        line, colour = f"Approved ({count}): {approvals}. Not sent yet.", "Good"
    elif view.state in _SENDING:
        line, colour = f"Approved ({count}): {approvals}. {_SENT[view.state]}", "Good"
    else:
        line, colour = f"No longer waiting for approval: {view.state}", "Warning"
    return {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": plain(line), "weight": "Bolder", "color": colour}],
        "separator": True,
    }


def _actions(view: CardView) -> list[dict[str, Any]]:
    data = action_data(view)
    reason = {
        "type": "Input.Text",
        "id": REASON_INPUT,
        "label": "Why (the author sees this)",
        "isMultiline": True,
        "isRequired": True,
        "maxLength": MAX_REASON,
        "errorMessage": "Say what must change",
    }
    reject = _execute(REJECT_VERB, "Reject", data, style="destructive", inputs="auto")
    return [
        _execute(APPROVE_VERB, "Approve", data, style="positive", inputs="none"),
        {
            "type": "Action.ShowCard",
            "title": "Reject…",
            "card": {"type": "AdaptiveCard", "body": [reason], "actions": [reject]},
        },
    ]


def _execute(
    verb: str, title: str, data: dict[str, Any], *, style: str, inputs: str
) -> dict[str, Any]:
    return {
        "type": "Action.Execute",
        "verb": verb,
        "title": title,
        "style": style,
        "associatedInputs": inputs,
        "data": data,
        # Clients without Universal Actions send a message activity with the data instead.
        "fallback": {
            "type": "Action.Submit",
            "title": title,
            "data": {**data, "verb": verb},
        },
    }


def _refresh(view: CardView) -> dict[str, Any]:
    refresh: dict[str, Any] = {
        "action": {"type": "Action.Execute", "verb": REFRESH_VERB, "data": action_data(view)}
    }
    if view.refresh_users:
        refresh["userIds"] = list(view.refresh_users[:MAX_REFRESH_USERS])
    return refresh


def _notice(text: str) -> dict[str, Any]:
    return {
        "type": "Container",
        "style": "attention",
        "items": [
            {
                "type": "RichTextBlock",
                "inlines": [
                    {
                        "type": "TextRun",
                        "text": plain(f"Not done: {text}"),
                        "weight": "Bolder",
                        "color": "Attention",
                    }
                ],
            }
        ],
    }


def _text(
    text: str,
    *,
    color: str = "Default",
    bold: bool = False,
    size: str = "Default",
    separator: bool = False,
) -> dict[str, Any]:
    """A TextBlock for our own words (never for what people typed: it reads markdown)."""
    block: dict[str, Any] = {"type": "TextBlock", "text": text, "wrap": True, "color": color}
    if bold:
        block["weight"] = "Bolder"
    if size != "Default":
        block["size"] = size
    if separator:
        block["separator"] = True
    return block


def _rich(text: str, *, size: str = "Default", bold: bool = False) -> dict[str, Any]:
    """What people typed, as plain text: a TextRun is not read as markdown."""
    run: dict[str, Any] = {"type": "TextRun", "text": plain(text)}
    if size != "Default":
        run["size"] = size
    if bold:
        run["weight"] = "Bolder"
    return {"type": "RichTextBlock", "inlines": [run]}
