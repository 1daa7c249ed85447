"""The JSON the website's ``webhook`` mode sends a CMS: one document per announcement revision.

The document is a contract with code we do not write (the municipality's CMS), so it is built
here field by field rather than from an editable template, and it only ever grows: a field is
never renamed or given another meaning within one ``version``. README, "The CMS side", documents
it for the people who write the receiving end. Everything in it is public (it is what the CMS
publishes); nothing in it changes between attempts of one delivery, so a repeated request
carries the same bytes and the CMS can recognise it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from broadcaster.rendering.markup import markdown_to_html, markdown_to_text
from broadcaster.rendering.message import KIND_LABELS, SEVERITY_LABELS, Message

__all__ = ["DOCUMENT_VERSION", "announcement_document", "encode", "removal_document"]

#: The document's ``version``: raised only for a change a receiver must know about.
DOCUMENT_VERSION = 1


def announcement_document(message: Message, timezone: str) -> dict[str, Any]:
    """The document of one revision for one target (the body of a POST or a PUT).

    Args:
        message: The revision, for one website target.
        timezone: The workspace's zone: times are written in it, with their UTC offset.
    """
    content = message.content
    organisation = message.organisation
    return {
        "version": DOCUMENT_VERSION,
        "id": message.uid,
        # The same URI the static site's Atom feed gives this announcement.
        "uri": f"urn:uuid:{message.uid}",
        "revision": message.revision,
        "kind": str(content.kind),
        "kind_label": KIND_LABELS[content.kind],
        "severity": str(content.severity),
        "severity_label": SEVERITY_LABELS[content.severity],
        "language": content.language,
        "title": content.title,
        "text": markdown_to_text(content.body),
        "html": markdown_to_html(content.body),
        "link": content.link,
        "organisation": {
            "id": organisation.id,
            "name": organisation.name,
            "phone": organisation.phone,
            "website": organisation.website,
            "kommunkod": organisation.kommunkod,
        },
        "target": message.target.id,
        "published_at": _local(message.published_at, timezone),
        "updated_at": _local(message.updated_at, timezone),
        "exercise": message.exercise,
        "content_hash": message.content_hash,
    }


def removal_document(uid: str, resource: str) -> dict[str, Any]:
    """The body of a DELETE: which announcement, and which of the CMS's resources, to remove.

    A DELETE has a body so that its signature covers what it removes: a signed request cannot be
    replayed against another resource, because the CMS checks ``resource`` against the path.
    """
    return {"version": DOCUMENT_VERSION, "id": uid, "resource": resource, "kind": "retraction"}


def encode(document: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: UTF-8 JSON, keys in a fixed order, no extra spaces."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _local(moment: datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")
