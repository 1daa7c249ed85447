"""Builders for test data."""

from __future__ import annotations

from datetime import datetime

from broadcaster.app import App
from broadcaster.model import Content, RevisionKind, Severity
from broadcaster.rendering.message import Message

HOSTILE_TITLE = '<script>alert("title")</script> & "citat" \'enkla\' {{ 7*7 }}'
HOSTILE_BODY = (
    'Första stycket <script>alert("body")</script> & <img src=x onerror=alert(1)>.\n\n'
    "[klicka](javascript:alert(1)) och [riktig länk](https://www.borgholm.se/?a=1&b=2)\n\n"
    "- punkt {% raw %} ett\n- punkt två"
)


def make_message(
    app: App,
    target_id: str,
    *,
    title: str = "Vattnet är tillbaka",
    body: str = "Dricksvattnet fungerar igen i **hela** kommunen.",
    severity: Severity = Severity.IMPORTANT,
    revision: int = 1,
    uid: str | None = None,
    kind: RevisionKind = RevisionKind.ORIGINAL,
    at: datetime | None = None,
    published: datetime | None = None,
) -> Message:
    """A message for one target of the test workspace, without touching the database."""
    content = Content(title=title, body=body, severity=severity, targets=(target_id,), kind=kind)
    return Message.unsaved(
        app.config,
        content,
        target_id=target_id,
        at=at or app.clock(),
        uid=uid,
        revision=revision,
        published_at=published,
    )
