"""CAP 1.2 alerts for the static site: one ``cap/<identifier>.xml`` per revision and a feed.

Others (Krisinformation, local radio, apps) read alerts in the Common Alerting Protocol, OASIS CAP
1.2 (namespace ``urn:oasis:names:tc:emergency:cap:1.2``). Every revision of an announcement the
site publishes gets its own alert file, written once and never changed (later alerts reference
it), and ``cap/index.atom`` lists the current ones. Both are built with ElementTree, never with
a template: the files must stay valid against the CAP XSD whatever a workspace overrides, and
text from people is always escaped (``<``, ``&``, ``]]>``) and rid of the characters XML 1.0
forbids (they are replaced with U+FFFD).

The fields:

- ``identifier``: ``<organisation id>-<announcement uid>-r<revision>``, e.g.
  ``borgholm-3f0c...-r2``; stable for a revision, unique per sender.
- ``sender``: the organisation's ``cap_sender`` if configured, else its website's host without
  ``www.`` (``https://www.borgholm.se`` → ``borgholm.se``).
- ``sent``: when the revision was dispatched, in the workspace's time zone with its offset and no
  fraction (``2026-12-12T20:30:00+01:00``; CAP forbids ``Z``).
- ``status``: ``Actual``, or ``Exercise`` in exercise mode (with a ``note`` saying so).
- ``msgType``: ``Alert`` for the first revision the site publishes; then ``Update`` (a correction)
  or ``Cancel`` (a retraction), whose ``references`` list every earlier alert of the announcement
  as ``sender,identifier,sent``, separated by spaces. A retraction of an announcement the site
  never published gets no alert: there is nothing to cancel.
- ``scope`` ``Public``; one ``info`` in the announcement's language (``sv`` is written ``sv-SE``);
  ``category`` ``Safety`` ("general emergency and public safety": what a municipality's crisis
  information is; an announcement names no more precise hazard); ``event``, ``headline`` (the
  title), ``description`` (the body as plain text), ``instruction`` (only when the revision has
  one; announcements have no such field yet, so it is omitted), ``senderName``, ``contact`` (the
  organisation's name and phone), ``web`` (the update's page when the target has a
  ``public_url``, else the announcement's link, else none).
- ``area``: ``areaDesc`` the organisation's name, and a ``geocode`` whose ``valueName`` is
  :data:`GEOCODE_NAME` (``SCB-kommunkod``) and whose ``value`` is the organisation's four-digit
  municipality code from Statistics Sweden (``kommunkod``: Borgholm 0885, Mörbylånga 0840).

The announcement's severity decides urgency, severity and certainty (:data:`SEVERITY_MAP`):

=========  =========  ========  =========
severity   urgency    severity  certainty
=========  =========  ========  =========
info       Future     Minor     Observed
important  Expected   Moderate  Observed
crisis     Immediate  Severe    Observed
=========  =========  ========  =========

A municipality reports what is happening, so certainty is always ``Observed``; ``Extreme`` is
kept for threats to life a municipality's crisis page does not announce alone.

The feed lists, newest first, every announcement's latest alert, with its ``Cancel`` kept for
:data:`CANCEL_KEPT` after it was sent (measured against the newest alert on the site, so the feed
only changes when something is published): a reader that polls now and then still sees the
cancellation rather than an alert that silently disappeared.
"""

from __future__ import annotations

import functools
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from broadcaster.config import Organisation
from broadcaster.errors import RenderError
from broadcaster.model import RevisionKind, Severity
from broadcaster.rendering.markup import markdown_to_text
from broadcaster.rendering.message import KIND_LABELS

__all__ = [
    "CANCEL_KEPT",
    "CAP_NS",
    "FEED_PATH",
    "GEOCODE_NAME",
    "SEVERITY_MAP",
    "CapSite",
    "MsgType",
    "alert_path",
    "cap_time",
    "default_sender",
]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
FOLDER = "cap"
FEED_PATH = f"{FOLDER}/index.atom"
CAP_MEDIA_TYPE = "application/cap+xml"
#: What the ``geocode`` value is: Statistics Sweden's four-digit municipality code.
GEOCODE_NAME = "SCB-kommunkod"
CATEGORY = "Safety"
#: How long a Cancel stays in the feed after it was sent.
CANCEL_KEPT = timedelta(hours=48)
EXERCISE_NOTE = "Övning: detta är en övning, inte ett verkligt meddelande."


@dataclass(frozen=True)
class _Grade:
    urgency: str
    severity: str
    certainty: str
    event: str


#: The announcement's severity in CAP's terms (and the ``event`` text shown to readers).
SEVERITY_MAP = {
    Severity.INFO: _Grade("Future", "Minor", "Observed", "Information från kommunen"),
    Severity.IMPORTANT: _Grade("Expected", "Moderate", "Observed", "Viktig information"),
    Severity.CRISIS: _Grade("Immediate", "Severe", "Observed", "Krisinformation"),
}


class MsgType(StrEnum):
    """CAP ``msgType`` values broadcaster writes."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


# CAP: identifier and sender hold no spaces, commas or restricted characters (< and &); ours
# also become file names, so they keep to a small set.
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]*$")
# What XML 1.0 forbids: C0 controls but tab, LF and CR; lone surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def default_sender(organisation: Organisation) -> str:
    """The organisation's CAP sender: ``cap_sender``, or its website's host without ``www.``."""
    if organisation.cap_sender:
        return organisation.cap_sender
    host = (urlsplit(organisation.website).hostname or organisation.id).lower()
    return host.removeprefix("www.")


def cap_time(moment: datetime, timezone: str) -> str:
    """A moment as CAP writes it: local time with its offset, whole seconds, never ``Z``."""
    return moment.astimezone(ZoneInfo(timezone)).replace(microsecond=0).isoformat()


def alert_path(identifier: str) -> str:
    """Where an alert lives, relative to the site root."""
    return f"{FOLDER}/{identifier}.xml"


@dataclass(frozen=True)
class CapSite:
    """The CAP side of one static site: its records, alert files and feed."""

    organisation: Organisation
    timezone: str
    exercise: bool = False
    #: The site's public root ending in ``/``, or "" when it has none.
    url: str = ""

    def record(self, entry: dict[str, Any], earlier: list[dict[str, Any]]) -> dict[str, str] | None:
        """The CAP record of the revision ``entry`` (None: it gets no alert).

        ``earlier`` are the records of the revisions the site published before; the record
        (identifier, sender, sent, type) is kept with the entry, so references and the feed
        never need an earlier alert file again.
        """
        if entry["kind"] == RevisionKind.RETRACTION:
            if not earlier:
                return None  # nothing was announced here that a Cancel could refer to
            kind = MsgType.CANCEL
        else:
            kind = MsgType.UPDATE if earlier else MsgType.ALERT
        identifier = f"{self.organisation.id}-{entry['uid']}-r{entry['revision']}"
        sender = default_sender(self.organisation)
        for value in (identifier, sender):
            if not _SAFE.match(value):
                raise RenderError(f"CAP: {value!r} may not be an identifier or sender")
        sent = cap_time(datetime.fromisoformat(entry["updated"]), self.timezone)
        return {"identifier": identifier, "sender": sender, "sent": sent, "type": str(kind)}

    def alert(self, entry: dict[str, Any]) -> str:
        """The alert file of the entry's latest record (its earlier records are referenced)."""
        *earlier, record = entry["cap"]
        org = self.organisation
        root = ET.Element("alert", {"xmlns": CAP_NS})
        _add(root, "identifier", record["identifier"])
        _add(root, "sender", record["sender"])
        _add(root, "sent", record["sent"])
        _add(root, "status", "Exercise" if self.exercise else "Actual")
        _add(root, "msgType", record["type"])
        _add(root, "scope", "Public")
        if self.exercise:
            _add(root, "note", EXERCISE_NOTE)
        if earlier:
            _add(root, "references", " ".join(_reference(r) for r in earlier))
        grade = SEVERITY_MAP[Severity(entry["severity"])]
        info = _add(root, "info")
        _add(info, "language", _cap_language(entry["language"]))
        _add(info, "category", CATEGORY)
        _add(info, "event", grade.event)
        _add(info, "urgency", grade.urgency)
        _add(info, "severity", grade.severity)
        _add(info, "certainty", grade.certainty)
        _add(info, "senderName", org.name)
        _add(info, "headline", self._headline(entry))
        _add(info, "description", markdown_to_text(entry["body"]))
        if entry.get("instruction"):
            _add(info, "instruction", entry["instruction"])
        web = f"{self.url}updates/{entry['uid']}.html" if self.url else entry.get("link")
        if web:
            _add(info, "web", web)
        _add(info, "contact", f"{org.name}, telefon {org.phone}")
        area = _add(info, "area")
        _add(area, "areaDesc", org.name)
        geocode = _add(area, "geocode")
        _add(geocode, "valueName", GEOCODE_NAME)
        _add(geocode, "value", org.kommunkod)
        return _document(root)

    def feed(self, entries: list[dict[str, Any]], feed_id: str) -> str:
        """``cap/index.atom``: every announcement's latest alert, newest first."""
        latest = [(e, e["cap"][-1]) for e in entries if e.get("cap")]
        latest.sort(key=lambda pair: datetime.fromisoformat(pair[1]["sent"]), reverse=True)
        if latest:
            newest = datetime.fromisoformat(latest[0][1]["sent"])
            latest = [
                (e, r)
                for e, r in latest
                if r["type"] != MsgType.CANCEL
                or datetime.fromisoformat(r["sent"]) >= newest - CANCEL_KEPT
            ]
        org = self.organisation
        feed = ET.Element("feed", {"xmlns": ATOM_NS, _XML_LANG: "sv"})
        _add(feed, "id", feed_id)
        _add(feed, "title", f"{self._prefix()}{org.name}: varningar i CAP-format")
        _add(feed, "updated", latest[0][1]["sent"] if latest else "1970-01-01T00:00:00Z")
        author = _add(feed, "author")
        _add(author, "name", org.name)
        _add(author, "uri", org.website)
        home = f"{self.url}index.html" if self.url else "../index.html"
        _link(feed, "alternate", "text/html", home)
        if self.url:
            _link(feed, "self", "application/atom+xml", f"{self.url}{FEED_PATH}")
        items = "".join(
            _feed_entry(
                self.url,
                self._headline(entry),
                entry["uid"],
                record["sender"],
                record["identifier"],
                record["sent"],
            )
            for entry, record in latest
        )
        # The entries go where the last of the feed's own elements ends, indented as
        # ET.indent would have indented them; each is serialised once (see _feed_entry).
        head = _document(feed)
        end = head.rindex("</feed>")
        return f"{head[:end]}{items}{head[end:]}"

    def _prefix(self) -> str:
        return "ÖVNING: " if self.exercise else ""

    def _headline(self, entry: dict[str, Any]) -> str:
        label = KIND_LABELS[RevisionKind(entry["kind"])]
        return f"{self._prefix()}{label + ': ' if label else ''}{entry['title']}"


@functools.lru_cache(maxsize=4096)
def _feed_entry(url: str, headline: str, uid: str, sender: str, identifier: str, sent: str) -> str:
    """One entry of ``cap/index.atom``, indented for its place in the feed, ending in a newline.

    An alert never changes, so neither does its entry: cached, as the feed lists every current
    alert again at every publish and serialising them all anew would grow with the site.
    """
    item = ET.Element("entry")
    key = f"{sender},{identifier}"
    _add(item, "id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}")
    _add(item, "title", headline)
    _add(item, "updated", sent)
    href = f"{url}{alert_path(identifier)}" if url else ""
    _link(item, "alternate", CAP_MEDIA_TYPE, href or f"{identifier}.xml")
    page = f"updates/{uid}.html"
    _link(item, "related", "text/html", f"{url}{page}" if url else f"../{page}")
    ET.indent(item, space="  ", level=1)
    return f"  {ET.tostring(item, encoding='unicode')}\n"


def _reference(record: dict[str, str]) -> str:
    return f"{record['sender']},{record['identifier']},{record['sent']}"


def _cap_language(language: str) -> str:
    # RFC 3066 with the region, as CAP's own examples write it; other languages as given.
    return {"sv": "sv-SE"}.get(language, language)


def _add(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    # Names are unqualified: the root declares its namespace as the default (xmlns="..."), so
    # every element is in it and attributes (Atom's rel, href) stay plain.
    element = ET.SubElement(parent, name)
    if text is not None:
        element.text = _NOT_XML.sub("\ufffd", text)
    return element


def _link(parent: ET.Element, rel: str, media_type: str, href: str) -> None:
    ET.SubElement(parent, "link", {"rel": rel, "type": media_type, "href": href})


def _document(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
