"""What an approval card shows, read from the database and the preview.

The channel lines (what each target will get: text length, SMS segments x recipients and cost)
come from :func:`~broadcaster.preview.preview_announcement`, which renders every target. A
revision's text never changes, so :class:`ChannelLines` keeps them for a few minutes: twenty
clicks on one card render it once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.approval import APPROVE, REJECT
from broadcaster.approval_card import CardDecision, CardView, ChannelLine
from broadcaster.model import Announcement
from broadcaster.preview import TargetPreview, preview_announcement
from broadcaster.store.announcements import get_announcement, get_revision
from broadcaster.store.approvals import decisions_for

__all__ = ["ChannelLines", "card_view", "channel_line"]

_KEEP_SECONDS = 300.0
_KEEP_REVISIONS = 64


def channel_line(preview: TargetPreview) -> ChannelLine:
    """One target's line: its errors, or its text's length (and for SMS what it costs)."""
    if preview.errors:
        summary = "cannot be sent: " + "; ".join(preview.errors)
    elif preview.sms is not None:
        sms = preview.sms
        text = sms.text
        summary = (
            f"SMS {text.encoding}, {text.characters} characters: {text.segments} segment(s) "
            f"x {sms.recipients if sms.recipients is not None else '?'} recipients = "
            f"{sms.total_segments if sms.total_segments is not None else '?'} segments"
        )
        cost = sms.cost
        if cost is not None:
            summary += f", cost {cost:,.2f}"
    else:
        summary = f"{len(preview.text or '')} characters"
    return ChannelLine(target=preview.target, channel=preview.channel, summary=summary)


class ChannelLines:
    """The channel lines of recently shown revisions (thread-safe; one per server or worker)."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[int, str], tuple[float, tuple[ChannelLine, ...]]] = (
            OrderedDict()
        )

    def __call__(self, announcement: Announcement) -> tuple[ChannelLine, ...]:
        """The lines of the announcement's current revision."""
        key = (announcement.id, announcement.revision.content_hash)
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and now - kept[0] < _KEEP_SECONDS:
                return kept[1]
        preview = preview_announcement(self._app, announcement)
        lines = tuple(channel_line(target) for target in preview.targets)
        with self._lock:
            self._kept[key] = (now, lines)
            while len(self._kept) > _KEEP_REVISIONS:
                self._kept.popitem(last=False)
        return lines


def card_view(
    app: App,
    conn: Connection,
    announcement_id: int,
    *,
    revision: int | None = None,
    lines: ChannelLines | None = None,
    refusal: str | None = None,
) -> CardView:
    """The card of revision ``revision`` (default: the current one) as it stands now."""
    announcement = get_announcement(conn, announcement_id)
    current = announcement.revision
    shown = (
        current
        if revision in (None, current.number)
        else get_revision(conn, announcement_id, revision)
    )
    decisions = decisions_for(conn, shown.id)
    approvals = tuple(
        CardDecision(person=d.person, decided_at=d.decided_at, via=d.via)
        for d in decisions
        if d.decision == APPROVE and d.content_hash == shown.content_hash
    )
    rejections = [
        CardDecision(person=d.person, decided_at=d.decided_at, via=d.via, reason=d.reason)
        for d in decisions
        if d.decision == REJECT
    ]
    content = shown.content
    config = app.config
    channels = lines(announcement) if lines is not None and shown is current else ()
    return CardView(
        announcement_id=announcement_id,
        revision=shown.number,
        content_hash=shown.content_hash,
        title=content.title,
        body=content.body,
        severity=str(content.severity),
        targets=tuple(content.targets),
        author=announcement.author,
        state=announcement.state,
        current_revision=current.number,
        required=config.approval.required,
        approvals=approvals,
        rejection=rejections[-1] if rejections else None,
        channels=channels,
        timezone=config.broadcaster.timezone,
        exercise=config.broadcaster.exercise,
        refusal=refusal,
    )
