"""Preview: every target's rendered output and every broken limit, before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broadcaster.app import App
from broadcaster.channels.base import Rendered
from broadcaster.errors import InputError, NotFoundError
from broadcaster.model import Announcement
from broadcaster.rendering.message import Message

__all__ = ["Preview", "TargetPreview", "preview_announcement"]


@dataclass(frozen=True, kw_only=True)
class TargetPreview:
    """One target's rendered output, or why it cannot be rendered."""

    target: str
    channel: str
    rendered: Rendered | None
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The DESIGN §5 shape: target, channel, text|card|files, errors."""
        document: dict[str, Any] = {"target": self.target, "channel": self.channel}
        rendered = self.rendered
        if rendered is not None:
            for key in ("text", "card", "files"):
                value = getattr(rendered, key)
                if value is not None:
                    document[key] = value
        document["errors"] = list(self.errors)
        return document


@dataclass(frozen=True)
class Preview:
    """The preview of one revision for all (or one) of its targets."""

    announcement: Announcement
    targets: list[TargetPreview]

    def problems(self) -> list[str]:
        """Every error as ``target: message``."""
        return [f"{t.target}: {error}" for t in self.targets for error in t.errors]

    def to_json(self) -> dict[str, Any]:
        """``{"id", "revision", "content_hash", "targets": [...]}``."""
        return {
            "id": self.announcement.id,
            "revision": self.announcement.revision.number,
            "content_hash": self.announcement.revision.content_hash,
            "targets": [t.to_json() for t in self.targets],
        }


def preview_announcement(
    app: App, announcement: Announcement, only_target: str | None = None
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
    return Preview(announcement, [_preview_one(app, announcement, t, now) for t in target_ids])


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
    except InputError as exc:  # RenderError included: template and limit problems
        return TargetPreview(target=target_id, channel=channel, rendered=None, errors=[str(exc)])
    return TargetPreview(
        target=target_id, channel=channel, rendered=rendered, errors=list(rendered.problems)
    )
