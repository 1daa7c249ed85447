"""What a channel renders: one revision of an announcement, for one target of one organisation."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broadcaster.config import Config, Organisation, TargetConfig
from broadcaster.errors import InputError
from broadcaster.model import Content, Receipt, Revision, RevisionKind, Severity
from broadcaster.rendering.markup import markdown_to_html, markdown_to_text
from broadcaster.rendering.renderer import TemplateNamespace

__all__ = ["KIND_LABELS", "SEVERITY_LABELS", "Message"]

SEVERITY_LABELS = {
    Severity.INFO: "Information",
    Severity.IMPORTANT: "Viktigt",
    Severity.CRISIS: "Kris",
}
KIND_LABELS = {
    RevisionKind.ORIGINAL: "",
    RevisionKind.CORRECTION: "Rättelse",
    RevisionKind.RETRACTION: "Återkallat",
}


@dataclass(frozen=True, kw_only=True)
class Message:
    """One revision for one target, with the moments the outputs show.

    ``updated_at`` is when this revision was dispatched (or now, in a preview); it is fixed per
    delivery so a retried delivery renders exactly the same output.
    """

    announcement_id: int
    uid: str
    revision: int
    content: Content
    content_hash: str
    organisation: Organisation
    target: TargetConfig
    published_at: datetime
    updated_at: datetime
    exercise: bool = False
    #: The recipient of a one-per-recipient channel (an E.164 number for SMS), else "".
    recipient: str = ""
    #: The delivery this message is sent as (None in previews): SMS puts it in the status
    #: callback URL (``?d=<id>``) so a callback finds its delivery before the SID is stored.
    delivery_id: int | None = None
    #: The receipt of the newest sent delivery of an earlier revision to the same target and
    #: recipient: what a correction edits or a retraction deletes. None for a first revision,
    #: where nothing was sent before, and in previews.
    previous: Receipt | None = None

    @property
    def idempotency_key(self) -> str:
        """Names this one delivery: the same on every attempt, different for every delivery.

        Platforms and publish steps use it to recognise a repeat. A recipient appears only as a
        hash, so the key can be logged or handed to a platform without the phone number.
        """
        key = f"{self.uid}.{self.revision}.{self.target.id}"
        if self.recipient:
            key += "." + hashlib.sha256(self.recipient.encode()).hexdigest()[:16]
        return key

    @classmethod
    def for_target(
        cls,
        config: Config,
        *,
        uid: str,
        revision: Revision,
        target_id: str,
        published_at: datetime,
        updated_at: datetime,
        recipient: str = "",
    ) -> Message:
        """The message for one target of a stored revision, as configured now."""
        target = config.target(target_id)
        if target is None:
            raise InputError(
                f"target {target_id!r} is no longer in the configuration; "
                "edit the announcement to choose its targets again"
            )
        return cls(
            announcement_id=revision.announcement_id,
            uid=uid,
            revision=revision.number,
            content=revision.content,
            content_hash=revision.content_hash,
            organisation=config.organisation(target.organisation),
            target=target,
            published_at=published_at,
            updated_at=updated_at,
            exercise=config.broadcaster.exercise,
            recipient=recipient,
        )

    @classmethod
    def unsaved(
        cls,
        config: Config,
        content: Content,
        *,
        target_id: str,
        at: datetime,
        uid: str | None = None,
        revision: int = 1,
        published_at: datetime | None = None,
    ) -> Message:
        """A message for content that is not in the database (``check``'s sample, tests)."""
        stored = Revision(
            id=0,
            announcement_id=0,
            number=revision,
            content=content,
            content_hash=content.content_hash(),
            author="",
            created_at=at,
        )
        return cls.for_target(
            config,
            uid=uid or str(uuid.uuid4()),
            revision=stored,
            target_id=target_id,
            published_at=published_at or at,
            updated_at=at,
        )

    def context(self) -> dict[str, Any]:
        """The variables templates see: ``announcement``, ``organisation``, ``target``, ..."""
        content = self.content
        announcement = {
            "id": self.announcement_id,
            "uid": self.uid,
            "revision": self.revision,
            "content_hash": self.content_hash,
            "kind": str(content.kind),
            "kind_label": KIND_LABELS[content.kind],
            "title": content.title,
            "body": content.body,
            "body_html": markdown_to_html(content.body),
            "body_text": markdown_to_text(content.body),
            "severity": str(content.severity),
            "severity_label": SEVERITY_LABELS[content.severity],
            "language": content.language,
            "link": content.link,
            "overrides": TemplateNamespace("announcement.overrides", content.overrides),
            "published_at": self.published_at,
            "updated_at": self.updated_at,
        }
        return {
            "announcement": TemplateNamespace("announcement", announcement),
            "organisation": TemplateNamespace("organisation", self.organisation.model_dump()),
            "target": TemplateNamespace(
                "target", {"id": self.target.id, "channel": self.target.channel}
            ),
            "exercise": self.exercise,
        }
