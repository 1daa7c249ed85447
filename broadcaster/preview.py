"""Preview: every target's rendered output and every broken limit, before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broadcaster.app import App
from broadcaster.approval_record import ApprovalRecord
from broadcaster.channels.base import Rendered
from broadcaster.channels.sms import SmsChannel
from broadcaster.errors import InputError, NotFoundError
from broadcaster.model import Announcement
from broadcaster.rendering.message import Message
from broadcaster.sms_preview import SmsSummary, sms_summary

__all__ = ["Preview", "TargetPreview", "preview_announcement"]


@dataclass(frozen=True, kw_only=True)
class TargetPreview:
    """One target's rendered output, or why it cannot be rendered."""

    target: str
    channel: str
    rendered: Rendered | None
    #: What a reader of the target sees, from the adapter's :meth:`~Channel.readable`.
    text: str | None = None
    errors: list[str] = field(default_factory=list)
    #: For an SMS target: encoding, segments, recipients and cost.
    sms: SmsSummary | None = None

    def to_json(self) -> dict[str, Any]:
        """The DESIGN §5 shape: target, channel, text (as read), card|files, payload, errors.

        ``text`` is what a reader sees; ``payload`` is what the platform is sent, exactly as
        rendered (its ``text`` may be markup: Telegram HTML, ...), with the ``card`` or ``files``
        that are also given at the top level, where DESIGN §5 put them first.
        """
        document: dict[str, Any] = {"target": self.target, "channel": self.channel}
        if self.text is not None:
            document["text"] = self.text
        rendered = self.rendered
        document["payload"] = None  # nothing could be rendered: see errors
        if rendered is not None:
            payload = {
                key: getattr(rendered, key)
                for key in ("text", "card", "files")
                if getattr(rendered, key) is not None
            }
            document.update((key, payload[key]) for key in ("card", "files") if key in payload)
            document["payload"] = payload
        if self.sms is not None:
            document["sms"] = self.sms.to_json()
        document["errors"] = list(self.errors)
        return document


@dataclass(frozen=True)
class Preview:
    """The preview of one revision for all (or one) of its targets."""

    announcement: Announcement
    targets: list[TargetPreview]
    #: Who approved this revision and its hash, when the caller looked it up.
    approval: ApprovalRecord | None = None

    def problems(self) -> list[str]:
        """Every error as ``target: message``."""
        return [f"{t.target}: {error}" for t in self.targets for error in t.errors]

    def to_json(self) -> dict[str, Any]:
        """``{"id", "state", "revision", "content_hash", "approval", "targets": [...]}``."""
        approval = self.approval
        return {
            "id": self.announcement.id,
            "state": str(self.announcement.state),
            "revision": self.announcement.revision.number,
            "content_hash": self.announcement.revision.content_hash,
            "approval": approval.summary_json() if approval else None,
            "targets": [t.to_json() for t in self.targets],
        }


def preview_announcement(
    app: App,
    announcement: Announcement,
    only_target: str | None = None,
    *,
    approval: ApprovalRecord | None = None,
) -> Preview:
    """Render the current revision for each of its targets (nothing is written or sent)."""
    target_ids = announcement.revision.content.targets
    if only_target is not None:
        if only_target not in target_ids:
            raise NotFoundError(
                f"--target {only_target}: announcement {announcement.id} does not go there "
                f"(its targets: {', '.join(target_ids)})"
            )
        target_ids = (only_target,)
    now = app.clock()
    targets = [_preview_one(app, announcement, t, now) for t in target_ids]
    return Preview(announcement, targets, approval)


def _preview_one(app: App, announcement: Announcement, target_id: str, now: Any) -> TargetPreview:
    target = app.config.target(target_id)
    channel = target.channel if target else "?"
    try:
        message = Message.for_target(
            app.config,
            uid=announcement.uid,
            revision=announcement.revision,
            target_id=target_id,
            published_at=now,
            updated_at=now,
        )
        adapter = app.registry.create(message.target, app.channel_context())
        rendered = adapter.prepare(message)
        text = adapter.readable(message, rendered)
    except InputError as exc:  # RenderError included: template and limit problems
        return TargetPreview(target=target_id, channel=channel, rendered=None, errors=[str(exc)])
    errors = list(rendered.problems)
    sms = None
    if isinstance(adapter, SmsChannel):
        sms = sms_summary(app, adapter, message)
        errors += [sms.problem] if sms.problem else []
    return TargetPreview(
        target=target_id, channel=channel, rendered=rendered, text=text, errors=errors, sms=sms
    )
