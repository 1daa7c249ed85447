"""A static crisis site for one organisation: index, one page per update, feeds, JSON, CAP.

The folder is self-contained: ``announcements.json`` is both the public JSON and the site's own
record of what it shows, so the site can be rebuilt, copied to a backup host, or served by any
web server without broadcaster's database. Publishing is an idempotent upsert keyed by the
announcement's uid and revision: publishing the same revision twice changes nothing, and an older
revision never replaces a newer one.

Broadcaster's own files for a site live beside the served folder, never in it (a web server or a
copy to a backup host would publish them): see :class:`SiteFolders`. A publish writes every
changed file to ``staging/`` first and then switches them in :data:`SWITCH_ORDER`, so the site
never links to a page that is not there yet, and ``announcements.json`` (what :meth:`StaticSite.has`
reads) says "shown" only once everything it describes is in place.

Each revision also gets a CAP 1.2 alert, ``cap/<identifier>.xml``, listed in ``cap/index.atom``
(see :mod:`~broadcaster.channels.cap`). An alert is written once, when its revision is published,
and never rendered again: what later alerts and the feed need of it (identifier, sender, sent,
type) is kept with the entry in ``announcements.json``.

A publish renders only what changes: the index, the two feeds, ``announcements.json``, and the
new revision's page and alert. An earlier update's page depends on nothing but its own entry and
the site's settings (templates, organisation, exercise, target options), so each entry keeps the
fingerprint of what its page was rendered from (``render``); a page is rendered again only when
that differs: its own correction or retraction, or a template or setting that changed (then
every page once). And it renders once: the worker renders a delivery before sending it (its
check), :meth:`StaticSite.prepare` keeps what it built with the SHA-256 of the record it read
(:class:`Built`), and the publish that follows switches those very files unless the record or
the settings changed meanwhile.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from markupsafe import Markup

from broadcaster.channels.cap import FEED_PATH, CapSite, alert_path
from broadcaster.channels.cap import FOLDER as CAP_FOLDER
from broadcaster.config import Organisation
from broadcaster.fileio import exclusive_lock, remove_leftovers, replace_files
from broadcaster.model import RevisionKind, Severity
from broadcaster.rendering import Renderer
from broadcaster.rendering.markup import markdown_to_html
from broadcaster.rendering.message import KIND_LABELS, SEVERITY_LABELS, Message
from broadcaster.rendering.renderer import TemplateNamespace

__all__ = [
    "SWITCH_ORDER",
    "Built",
    "SiteFolders",
    "StaticSite",
    "entry_from_message",
    "page_path",
]

STATE_FILE = "announcements.json"
PAGES_FOLDER = "updates"
FORMAT_VERSION = 1
#: How many of the newest updates ``feed.atom`` lists.
FEED_ENTRIES = 50
#: Raise to render every page again once for a reason the fingerprint cannot see; changes to
#: the templates and to the code that shapes a page (see _code_fingerprint) it sees by itself.
RENDER_VERSION = 1
#: The order in which a publish switches files; any file not named (the update pages and CAP
#: alerts) goes first. The feeds and the index link to those; announcements.json describes all.
SWITCH_ORDER = (FEED_PATH, "feed.atom", "index.html", STATE_FILE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The modules whose code shapes a page besides its templates (see _code_fingerprint).
_PAGE_CODE = (
    __name__,
    "broadcaster.rendering.renderer",
    "broadcaster.rendering.markup",
    "broadcaster.rendering.phones",
    "broadcaster.rendering.message",
    "broadcaster.timeutil",
)
#: The entry fields that, with its content hash, say all a page shows (see _fingerprint).
_IDENTITY = ("uid", "id", "revision", "content_hash", "published", "updated")
#: Entry fields a page's fingerprint leaves out (see :func:`_fingerprint`).
_NOT_ON_PAGE = frozenset({"cap", "render", "body_html"})


def entry_from_message(message: Message) -> dict[str, Any]:
    """The JSON record of one announcement revision, as stored in ``announcements.json``."""
    content = message.content
    return {
        "uid": message.uid,
        "id": message.announcement_id,
        "revision": message.revision,
        "content_hash": message.content_hash,
        "kind": str(content.kind),
        "title": content.title,
        "body": content.body,
        "body_html": markdown_to_html(content.body),
        "severity": str(content.severity),
        "language": content.language,
        "link": content.link,
        "published": message.published_at.isoformat(timespec="seconds"),
        "updated": message.updated_at.isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class StaticSite:
    """The output folder of one static website target."""

    root: Path
    organisation: Organisation
    renderer: Renderer
    exercise: bool = False
    public_url: str | None = None
    language: str = "sv"
    #: Where CAP's ``sent`` times are written (local time with its offset), and pages' times.
    timezone: str = "Europe/Stockholm"
    #: The index shows this many of the newest updates in full and links the older ones.
    inline_updates: int = 10
    #: A retracted update is shown marked as withdrawn, or removed from the index and feed.
    retracted: Literal["mark", "remove"] = "mark"

    @property
    def folders(self) -> SiteFolders:
        """The served folder and broadcaster's own folder beside it."""
        return SiteFolders(self.root)

    @property
    def cap(self) -> CapSite:
        """The site's CAP alerts and their feed."""
        return CapSite(self.organisation, self.timezone, self.exercise, self._url())

    def publish(self, entry: dict[str, Any], built: Built | None = None) -> str:
        """Add or update one announcement and switch the changed files at once.

        ``built`` is what :meth:`prepare` built for this entry a moment ago (the worker renders
        before it sends); it is switched as it is if the site's record and settings are still
        those it was built from, and built anew otherwise.

        Returns:
            The announcement's page, relative to the site root.

        Raises:
            OSError: A file could not be written; the served files are as they were, or (if a
                rename failed) in a state where every link works and ``has`` is still False.
        """
        folders = self.folders
        with exclusive_lock(folders.lock):
            folders.discard_leftovers()
            if built is not None and built.still_holds(self, entry):
                if built.changed or not (self.root / "index.html").exists():
                    self._switch(built.files)
                return page_path(entry["uid"])
            entries = self._load()
            merged, changed = upsert(entries, self._recorded(entries, entry))
            if changed or not (self.root / "index.html").exists():
                self._switch(self.build(merged, new=entry["uid"] if changed else None))
        return page_path(entry["uid"])

    def preview(self, entry: dict[str, Any]) -> dict[str, str]:
        """The files as they would be after publishing ``entry`` (nothing is written).

        The announcement's own page is among them even when it would not change (a revision
        already shown): it is what a preview reads to the approver.
        """
        return self.prepare(entry).files

    def prepare(self, entry: dict[str, Any]) -> Built:
        """:meth:`preview`'s files, with what they were built from (for :meth:`publish`)."""
        record = self._read_record()
        entries = _entries_of(record)
        merged, changed = upsert(entries, self._recorded(entries, entry))
        files = self.build(merged, new=entry["uid"] if changed else None, page=entry["uid"])
        return Built(
            files=files,
            changed=changed,
            uid=entry["uid"],
            revision=entry["revision"],
            record=_digest(record),
            settings=self._settings_key(),
        )

    def _read_record(self) -> bytes | None:
        """``announcements.json`` as it is on disk (None: there is none yet)."""
        try:
            return (self.root / STATE_FILE).read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # (a file where the folder should be
            return None  # is for the write to report)

    def has(self, uid: str, revision: int) -> bool:
        """True when the site already shows this revision (or a newer one) of an announcement."""
        return any(e["uid"] == uid and e["revision"] >= revision for e in self._load())

    def build(
        self, entries: list[dict[str, Any]], new: str | None = None, page: str | None = None
    ) -> dict[str, str]:
        """The files that change when the site shows ``entries`` (newest update first).

        That is the index, the feeds and ``announcements.json``; the page of every entry whose
        fingerprint says its page is out of date (or that has none on disk), and announcement
        ``page``'s in any case; and the CAP alert of announcement ``new``'s latest revision:
        the alerts of earlier revisions are already written and never change.
        """
        # First: it also makes the renderer forget templates that changed (see fingerprint).
        settings = self._settings_key()
        ordered = sorted(entries, key=lambda e: (e["updated"], e["uid"]), reverse=True)
        listed = [_entry_view(e) for e in ordered if self._listed(e)]
        updated = max((datetime.fromisoformat(e["updated"]) for e in ordered), default=_EPOCH)
        base = {
            "language": self.language,
            "organisation": TemplateNamespace("organisation", self.organisation.model_dump()),
            "exercise": self.exercise,
        }
        index = {**base, "site": self._site_namespace(updated), "entries": listed}
        files = {
            "index.html": self.renderer.render("website/index.html", index),
            # A feed reader keeps what it has seen; the full record is announcements.json.
            "feed.atom": self.renderer.render(
                "website/feed.atom", {**index, "entries": listed[:FEED_ENTRIES]}
            ),
            FEED_PATH: self.cap.feed(ordered, f"urn:uuid:{self._feed_uuid('cap')}"),
        }
        added = next((e for e in entries if e["uid"] == new), None)
        if added and added.get("cap"):
            files[alert_path(added["cap"][-1]["identifier"])] = self.cap.alert(added)
        pages = self._pages_on_disk()
        recorded = []
        for entry in ordered:
            render = _fingerprint(settings, entry)
            path = page_path(entry["uid"])
            if entry.get("render") != render or path not in pages or entry["uid"] == page:
                view = _entry_view(entry)
                context = {**base, "site": self._site_namespace(view["updated"]), "entry": view}
                files[path] = self.renderer.render("website/announcement.html", context)
            recorded.append({**entry, "render": render})
        files[STATE_FILE] = self._state_json(recorded)
        return files

    def _pages_on_disk(self) -> set[str]:
        """The update pages the served folder holds (one listing, not a look per page)."""
        try:
            with os.scandir(self.root / PAGES_FOLDER) as found:
                return {f"{PAGES_FOLDER}/{item.name}" for item in found if item.is_file()}
        except OSError:  # no folder yet, or not one: every page is written (or fails to be)
            return set()

    def _listed(self, entry: dict[str, Any]) -> bool:
        """Whether the index and the feed show the entry (a removed retraction they do not)."""
        return self.retracted == "mark" or entry["kind"] != RevisionKind.RETRACTION

    def _site_namespace(self, updated: datetime) -> TemplateNamespace:
        return TemplateNamespace(
            "site",
            {
                "url": self._url(),
                "feed_id": f"urn:uuid:{self._feed_uuid()}",
                "updated": updated,
                "inline_updates": self.inline_updates,
                "retracted": self.retracted,
            },
        )

    def _settings_key(self) -> str:
        """What every page is rendered from besides its entry: templates, code and settings."""
        settings = {
            "code": _code_fingerprint(),
            "templates": self.renderer.fingerprint("website/"),
            "organisation": self.organisation.model_dump(mode="json"),
            "exercise": self.exercise,
            "language": self.language,
            "url": self._url(),
            "timezone": self.timezone,
            "retracted": self.retracted,
        }
        text = json.dumps(settings, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _switch(self, files: dict[str, str]) -> None:
        """Write the files whose content differs from what is served, then switch them in order."""
        changed = []
        for name in sorted(files, key=_switch_rank):
            path, payload = self.root / name, files[name].encode("utf-8")
            if _content(path) != payload:
                changed.append((path, payload))
        replace_files(changed, temp_dir=self.folders.staging)

    def _load(self) -> list[dict[str, Any]]:
        return _entries_of(self._read_record())

    def _state_json(self, entries: list[dict[str, Any]]) -> str:
        """``announcements.json``: the site's settings indented, then one announcement a line.

        One line each keeps the file readable and lets the fast (C) JSON encoder write it; an
        indented whole would take the slow one, for every entry at every publish.
        """
        org = self.organisation
        head = {
            "format": FORMAT_VERSION,
            "organisation": {
                "id": org.id,
                "name": org.name,
                "phone": org.phone,
                "website": org.website,
            },
            "exercise": self.exercise,
            "updated": max((e["updated"] for e in entries), default=None),
        }
        text = json.dumps(head, ensure_ascii=False, indent=2)
        lines = ",\n".join(f"    {json.dumps(e, ensure_ascii=False)}" for e in entries)
        announcements = f'"announcements": [\n{lines}\n  ]' if entries else '"announcements": []'
        return f"{text[:-2]},\n  {announcements}\n}}\n"

    def _recorded(self, entries: list[dict[str, Any]], entry: dict[str, Any]) -> dict[str, Any]:
        """``entry`` with the CAP records of its announcement: the earlier ones and its own."""
        earlier = next((list(e.get("cap", [])) for e in entries if e["uid"] == entry["uid"]), [])
        record = self.cap.record(entry, earlier)
        return {**entry, "cap": [*earlier, record] if record else earlier}

    def _url(self) -> str:
        return self.public_url.rstrip("/") + "/" if self.public_url else ""

    def _feed_uuid(self, feed: str = "") -> uuid.UUID:
        # Stable per organisation, so feed readers keep their subscription across rebuilds.
        suffix = f"-{feed}" if feed else ""
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{self.organisation.website}#broadcaster{suffix}")


@dataclass(frozen=True, kw_only=True)
class Built:
    """The files :meth:`StaticSite.prepare` built for one entry, and what they were built from.

    Publishing right after a preview (as the worker does) would otherwise render everything
    twice; these files are what that second rendering would give as long as the site's record
    (the one input that changes between the two) and its settings are the same.
    """

    files: dict[str, str]
    changed: bool
    uid: str
    revision: int
    #: The SHA-256 of the ``announcements.json`` they were built from.
    record: str
    settings: str

    def still_holds(self, site: StaticSite, entry: dict[str, Any]) -> bool:
        """True when publishing ``entry`` to ``site`` now would build exactly these files."""
        return (
            (self.uid, self.revision) == (entry["uid"], entry["revision"])
            and self.record == _digest(site._read_record())
            and self.settings == site._settings_key()
        )


@dataclass(frozen=True)
class SiteFolders:
    """Where one static site lives: the served folder, and broadcaster's own folder beside it.

    For the served folder ``site/borgholm`` broadcaster keeps ``site/.borgholm.broadcaster/``:
    ``site.lock`` (one writer at a time), ``staging/`` (a publish's temporary files, on the same
    file system so that renaming them into place is atomic) and ``published/`` (the records of
    the publish step, see :mod:`broadcaster.channels.publish_step`).
    """

    served: Path

    @property
    def state(self) -> Path:
        """Broadcaster's own folder for this site."""
        return self.served.parent / f".{self.served.name}.broadcaster"

    @property
    def lock(self) -> Path:
        """Held by whoever writes the served folder."""
        return self.state / "site.lock"

    @property
    def staging(self) -> Path:
        """Temporary files of a publish in progress."""
        return self.state / "staging"

    @property
    def published(self) -> Path:
        """One record per delivery whose publish step ran."""
        return self.state / "published"

    def discard_leftovers(self) -> None:
        """Delete what a crashed publish left behind; call it holding :attr:`lock`.

        That is everything in ``staging/``, and the temporary files in the served folder that
        older versions wrote there (as the fallback for a served folder on another mount does).
        """
        remove_leftovers(self.staging, "*")
        remove_leftovers(self.served)
        remove_leftovers(self.served / PAGES_FOLDER)
        remove_leftovers(self.served / CAP_FOLDER)


def _entries_of(record: bytes | None) -> list[dict[str, Any]]:
    """The announcements an ``announcements.json`` holds."""
    if record is None:
        return []
    return list(json.loads(record.decode("utf-8")).get("announcements", []))


def _digest(record: bytes | None) -> str:
    return hashlib.sha256(record).hexdigest() if record is not None else ""


def upsert(
    entries: list[dict[str, Any]], entry: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """Entries with ``entry`` added or replacing an older revision; False if nothing changed."""
    for index, existing in enumerate(entries):
        if existing["uid"] != entry["uid"]:
            continue
        if existing["revision"] >= entry["revision"]:
            return entries, False
        # A correction keeps the time the announcement was first published.
        replaced = {**entry, "published": existing["published"]}
        return [*entries[:index], replaced, *entries[index + 1 :]], True
    return [*entries, entry], True


def page_path(uid: str) -> str:
    """Where an announcement's own page lives, relative to the site root."""
    return f"{PAGES_FOLDER}/{uid}.html"


def _switch_rank(name: str) -> tuple[int, str]:
    rank = SWITCH_ORDER.index(name) + 1 if name in SWITCH_ORDER else 0
    return rank, name


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _fingerprint(settings: str, entry: dict[str, Any]) -> str:
    """The hash of what the entry's page is rendered from: the settings and the entry.

    An entry's ``content_hash`` covers its text, severity, kind, language and link, so with its
    ids and times it stands for the whole entry, cheaply (this runs for every entry at every
    publish). An entry without one (written by hand) is hashed field by field. Its CAP records
    are not shown, and ``body_html`` is rendered again from ``body``.
    """
    if entry.get("content_hash"):
        keys: tuple[str, ...] = _IDENTITY
    else:
        keys = tuple(sorted(k for k in entry if k not in _NOT_ON_PAGE))
    digest = hashlib.sha256(settings.encode())
    for key in keys:
        digest.update(f"\0{key}\0{entry.get(key)}".encode())
    return digest.hexdigest()


@functools.cache
def _code_fingerprint() -> str:
    """The hash of the code that shapes a page besides its templates: this module (the entry's
    view), the template filters (times, phone numbers, markdown) and the labels."""
    digest = hashlib.sha256(f"render {RENDER_VERSION}".encode())
    for name in _PAGE_CODE:
        module = sys.modules.get(name)  # all imported by now (by this module or the renderer)
        try:
            digest.update(Path(str(getattr(module, "__file__", ""))).read_bytes())
        except OSError:  # no source beside the code (a frozen build): the version must do
            digest.update(name.encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1024)
def _body_html(body: str) -> Markup:
    # Rendered from the source text rather than trusting HTML read back from disk; the markdown
    # renderer has raw HTML disabled, so its output is safe markup. Cached, as the index and the
    # feed show the same bodies publish after publish.
    return Markup(markdown_to_html(body))  # noqa: S704


def _entry_view(entry: dict[str, Any]) -> TemplateNamespace:
    kind = RevisionKind(entry["kind"])
    severity = Severity(entry["severity"])
    return TemplateNamespace(
        "entry",
        {
            **entry,
            "body_html": _body_html(entry["body"]),
            "published": datetime.fromisoformat(entry["published"]),
            "updated": datetime.fromisoformat(entry["updated"]),
            "severity_label": SEVERITY_LABELS[severity],
            "kind_label": KIND_LABELS[kind],
            "page": page_path(entry["uid"]),
        },
    )
