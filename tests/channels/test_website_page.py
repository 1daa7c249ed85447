"""The crisis page after many updates: the newest inlined, the rest linked, corrections and
retractions shown as such, and a publish that renders and writes only what changes.

``tests/channels/test_website_phone.py`` opens the same kind of page in headless Chromium.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import feedparser
import html5lib
import pytest

from broadcaster.app import App
from broadcaster.channels import static_site
from broadcaster.channels.static_site import FEED_ENTRIES
from broadcaster.channels.website import WebsiteChannel
from broadcaster.config import WebsiteStaticTarget
from broadcaster.errors import ConfigError
from broadcaster.model import RevisionKind
from broadcaster.rendering import Renderer
from broadcaster.rendering.message import Message
from broadcaster.workspace import load_workspace
from tests.conftest import FakeClock
from tests.factories import make_message

HTML_NS = "{http://www.w3.org/1999/xhtml}"


def channel_for(app: App, *, exercise: bool = False, **changes: Any) -> WebsiteChannel:
    target = app.config.target("web-borgholm")
    assert isinstance(target, WebsiteStaticTarget)
    context = dataclasses.replace(app.channel_context(), exercise=exercise)
    return WebsiteChannel(target.model_copy(update=changes), context)


def publish(app: App, message: Message, **changes: Any) -> None:
    channel = channel_for(app, **changes)
    rendered = channel.prepare(message)
    assert rendered.problems == ()
    asyncio.run(channel.send(message, rendered))


def site(workspace_dir: Path) -> Path:
    return workspace_dir / "site" / "borgholm"


def parse(path: Path) -> Any:
    return html5lib.HTMLParser(strict=True).parse(path.read_bytes())


def text_of(element: Any) -> str:
    return " ".join("".join(element.itertext()).split())


def articles(path: Path) -> list[Any]:
    return list(parse(path).iter(f"{HTML_NS}article"))


def older_links(path: Path) -> list[tuple[str, str]]:
    """(href, text) of each link in the index's list of older updates."""
    document = parse(path)
    section = document.find(f".//{HTML_NS}section")
    if section is None:
        return []
    return [(a.get("href"), text_of(a)) for a in section.iter(f"{HTML_NS}a")]


def updates(app: App, clock: FakeClock, count: int, **changes: Any) -> list[Message]:
    """Publish ``count`` updates, half an hour apart; returns them, oldest first."""
    sent = []
    for number in range(count):
        clock.advance(1800)
        message = make_message(app, "web-borgholm", uid=f"u-{number:03d}", title=f"Läge {number}")
        publish(app, message, **changes)
        sent.append(message)
    return sent


def correction_of(app: App, message: Message, title: str) -> Message:
    return make_message(
        app,
        "web-borgholm",
        uid=message.uid,
        revision=message.revision + 1,
        kind=RevisionKind.CORRECTION,
        title=title,
        published=message.published_at,
    )


def retraction_of(app: App, message: Message, body: str = "Gäller inte längre.") -> Message:
    return make_message(
        app,
        "web-borgholm",
        uid=message.uid,
        revision=message.revision + 1,
        kind=RevisionKind.RETRACTION,
        title=message.content.title,
        body=body,
        published=message.published_at,
    )


# ---------------------------------------------------------------------------------------------
# The page


def test_the_newest_updates_are_inlined_and_the_older_linked(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    updates(app, clock, 13, inline_updates=10)
    index = site(workspace_dir) / "index.html"
    shown = [text_of(a.find(f"{HTML_NS}h2")) for a in articles(index)]
    assert shown == [f"Läge {n}" for n in range(12, 2, -1)]  # the ten newest, newest first
    assert older_links(index) == [
        ("updates/u-002.html", "Läge 2"),
        ("updates/u-001.html", "Läge 1"),
        ("updates/u-000.html", "Läge 0"),
    ]
    text = index.read_text(encoding="utf-8")
    assert '<h2 id="older">Tidigare meddelanden</h2>' in text
    # each older one with its date in Swedish words, Stockholm time (20:00 UTC + 1 h)
    assert 'Läge 0</a>, <time datetime="2026-12-12T20:00:00+00:00">12 december 2026 kl. 21:00' in (
        text
    )
    for href, _ in older_links(index):
        assert (site(workspace_dir) / href).is_file()


def test_the_page_stays_small_after_a_hundred_updates(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    body = "Kommunens servrar är avstängda. " * 20  # about 650 characters each
    sizes = []
    for number in range(110):
        clock.advance(600)
        publish(app, make_message(app, "web-borgholm", title=f"Lägesbild {number}", body=body))
        sizes.append((site(workspace_dir) / "index.html").stat().st_size)
    # Inlined: ten bodies; each older update adds a line with a link, not its text.
    per_older = (sizes[109] - sizes[59]) / 50
    assert per_older < 250, per_older
    assert sizes[109] < 50_000, sizes[109]
    assert len(articles(site(workspace_dir) / "index.html")) == 10
    # The Atom feed lists the newest 50 (a reader keeps what it saw); the JSON has every one,
    # and the CAP feed every current alert.
    feed = feedparser.parse(site(workspace_dir) / "feed.atom")
    assert len(feed.entries) == FEED_ENTRIES == 50
    assert feed.entries[0].title == "Lägesbild 109"
    data = json.loads((site(workspace_dir) / "announcements.json").read_text(encoding="utf-8"))
    assert len(data["announcements"]) == 110
    assert len(feedparser.parse(site(workspace_dir) / "cap" / "index.atom").entries) == 110


def test_the_number_inlined_is_configurable(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    updates(app, clock, 4, inline_updates=2)
    index = site(workspace_dir) / "index.html"
    assert len(articles(index)) == 2
    assert [href for href, _ in older_links(index)] == ["updates/u-001.html", "updates/u-000.html"]


def test_a_correction_is_shown_as_a_correction(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    (first,) = updates(app, clock, 1)
    clock.advance(600)
    publish(app, correction_of(app, first, "Läge 0, rättat"))
    for path in (site(workspace_dir) / "index.html", site(workspace_dir) / "updates/u-000.html"):
        (article,) = articles(path)
        text = text_of(article)
        assert "Rättelse" in text
        assert "texten nedan ersätter en tidigare version" in text
        assert "Publicerad 12 december 2026 kl. 21:00, rättad 12 december 2026 kl. 21:10" in text
        assert "Läge 0, rättat" in text


def test_a_retracted_update_is_marked_as_withdrawn_by_default(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    first, _ = updates(app, clock, 2)
    clock.advance(600)
    publish(app, retraction_of(app, first, "Skolan behöver inte utrymmas."))
    root = site(workspace_dir)
    withdrawn = [a for a in articles(root / "index.html") if "withdrawn" in a.get("class")]
    (article,) = withdrawn
    text = text_of(article)
    assert text.startswith("Återkallat Läge 0")
    assert "Det här meddelandet är återkallat och gäller inte längre." in text
    assert "återkallad 12 december 2026 kl. 21:40" in text
    assert "Skolan behöver inte utrymmas." in text
    assert "Återkallat: Läge 0" in [e.title for e in feedparser.parse(root / "feed.atom").entries]
    assert "återkallat och gäller inte längre" in (root / "updates/u-000.html").read_text("utf-8")


def test_a_retracted_update_can_be_removed_instead(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    first, _ = updates(app, clock, 2, retracted="remove")
    clock.advance(600)
    retraction = retraction_of(app, first)
    publish(app, retraction, retracted="remove")
    root = site(workspace_dir)
    index = (root / "index.html").read_text(encoding="utf-8")
    assert "Läge 0" not in index and "u-000" not in index
    assert "Läge 1" in index
    assert [e.title for e in feedparser.parse(root / "feed.atom").entries] == ["Läge 1"]
    # Whoever follows an old link learns it was withdrawn, and not what it said.
    page = text_of(parse(root / "updates/u-000.html"))
    assert "Meddelandet är återkallat" in page and "Läge 0" not in page
    # The site's record still has it (it is how a retry knows the retraction was published).
    data = json.loads((root / "announcements.json").read_text(encoding="utf-8"))
    assert [(e["uid"], e["kind"]) for e in data["announcements"]] == [
        ("u-000", "retraction"),
        ("u-001", "original"),
    ]
    assert asyncio.run(channel_for(app, retracted="remove").verify(retraction)) is not None


def test_exercise_banner_and_the_last_updated_line(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    channel = channel_for(app, exercise=True)
    clock.advance(3600)
    message = make_message(app, "web-borgholm")
    asyncio.run(channel.send(message, channel.prepare(message)))
    document = parse(site(workspace_dir) / "index.html")
    header = document.find(f".//{HTML_NS}header")
    assert "ÖVNING \u2013 detta är en övning" in text_of(header)
    updated = next(p for p in document.iter(f"{HTML_NS}p") if p.get("class") == "updated")
    assert text_of(updated) == "Senast uppdaterad 12 december 2026 kl. 21:30"
    assert updated.find(f"{HTML_NS}time").get("datetime") == "2026-12-12T20:30:00+00:00"


def test_landmarks_and_headings(app: App, workspace_dir: Path, clock: FakeClock) -> None:
    updates(app, clock, 12)
    for path in (site(workspace_dir) / "index.html", site(workspace_dir) / "updates/u-000.html"):
        document = parse(path)
        body = document.find(f"{HTML_NS}body")
        # Everything but the skip link is in a landmark: banner, main, contentinfo.
        assert [child.tag.removeprefix(HTML_NS) for child in body] == ["a", "header", "div"]
        assert len(document.findall(f".//{HTML_NS}main")) == 1
        assert len(document.findall(f".//{HTML_NS}footer")) == 1
        assert len(document.findall(f".//{HTML_NS}h1")) == 1
        assert document.findall(f".//{HTML_NS}script") == []
        assert document.findall(f".//{HTML_NS}link[@rel='stylesheet']") == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('retracted = "hide"', "retracted: Input should be 'mark' or 'remove'"),
        ("inline_updates = 0", "inline_updates: Input should be greater than or equal to 1"),
    ],
)
def test_the_page_options_are_checked(workspace_dir: Path, line: str, problem: str) -> None:
    path = workspace_dir / "broadcaster.toml"
    text = path.read_text(encoding="utf-8")
    anchor = 'output_dir = "site/borgholm"\n'
    path.write_text(text.replace(anchor, anchor + line + "\n"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_workspace(path, {})
    assert any(problem in p and "web-borgholm" in p for p in caught.value.problems), (
        caught.value.problems
    )


# ---------------------------------------------------------------------------------------------
# Point 5 of issue 12: a publish renders and writes only what changes


class Watch:
    """Which templates are rendered and which served files are switched, from now on."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rendered: list[str] = []
        self.switched: list[str] = []
        real_render, real_replace = Renderer.render, os.replace

        def render(renderer: Renderer, name: str, context: Any) -> str:
            entry = context.get("entry")
            self.rendered.append(f"{name}:{entry['uid']}" if entry else name)
            return real_render(renderer, name, context)

        def replace(src: str | Path, dst: str | Path) -> None:
            if Path(dst).is_relative_to(root):
                self.switched.append(Path(dst).relative_to(root).as_posix())
            real_replace(src, dst)

        monkeypatch.setattr(Renderer, "render", render)
        monkeypatch.setattr(os, "replace", replace)

    def pages(self) -> list[str]:
        return sorted(r.split(":", 1)[1] for r in self.rendered if ":" in r)

    def clear(self) -> None:
        self.rendered.clear()
        self.switched.clear()


def test_a_new_update_renders_and_writes_only_what_changes(
    app: App, workspace_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = site(workspace_dir)
    updates(app, clock, 15)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    watch = Watch(root, monkeypatch)
    clock.advance(60)
    publish(app, make_message(app, "web-borgholm", uid="u-new", title="Nytt"))
    # prepare (the worker's preview) renders the new page, never an earlier one; send
    # switches what prepare rendered
    assert watch.pages() == ["u-new"]
    assert sorted(watch.rendered) == [
        "website/announcement.html:u-new",
        "website/feed.atom",
        "website/index.html",
    ]
    assert sorted(watch.switched) == [
        "announcements.json",
        "cap/borgholm-u-new-r1.xml",
        "cap/index.atom",
        "feed.atom",
        "index.html",
        "updates/u-new.html",
    ]
    # and of the files already there, only these four are rewritten
    changed = {
        p.relative_to(root).as_posix() for p, t in before.items() if p.stat().st_mtime_ns != t
    }
    assert changed == {"announcements.json", "cap/index.atom", "feed.atom", "index.html"}


def test_a_correction_renders_only_its_own_page(
    app: App, workspace_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = site(workspace_dir)
    sent = updates(app, clock, 12)
    watch = Watch(root, monkeypatch)
    clock.advance(60)
    publish(app, correction_of(app, sent[3], "Läge 3, rättat"))
    assert set(watch.pages()) == {"u-003"}
    assert "Läge 3, rättat" in (root / "updates/u-003.html").read_text(encoding="utf-8")
    assert not [s for s in watch.switched if s.startswith("updates/") and s != "updates/u-003.html"]


def test_a_changed_template_renders_every_page_once(
    app: App, workspace_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = site(workspace_dir)
    updates(app, clock, 3)
    override = workspace_dir / "templates" / "website" / "_entry.html"
    override.parent.mkdir(parents=True, exist_ok=True)
    bundled = app.renderer.bundled_dir / "website" / "_entry.html"
    override.write_text(
        bundled.read_text(encoding="utf-8").replace("Publicerad", "Utsänt"), encoding="utf-8"
    )
    app.renderer = Renderer(workspace_dir / "templates", app.config.broadcaster.timezone)
    watch = Watch(root, monkeypatch)
    clock.advance(60)
    publish(app, make_message(app, "web-borgholm", uid="u-new"))
    channel = channel_for(app)
    # every earlier page is rendered once more, by the preview the send then switches
    assert watch.pages() == ["u-000", "u-001", "u-002", "u-new"]
    for page in ("u-000", "u-001", "u-002", "u-new"):
        assert "Utsänt" in (root / f"updates/{page}.html").read_text(encoding="utf-8")
    watch.clear()
    clock.advance(60)
    message = make_message(app, "web-borgholm", uid="u-newer")
    asyncio.run(channel.send(message, channel.prepare(message)))
    assert watch.pages() == ["u-newer"]  # once was enough


def test_a_changed_setting_renders_every_page_and_a_missing_page_comes_back(
    app: App, workspace_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = site(workspace_dir)
    updates(app, clock, 3)
    (root / "updates/u-001.html").unlink()  # deleted by hand, or lost with a disk
    watch = Watch(root, monkeypatch)
    clock.advance(60)
    publish(app, make_message(app, "web-borgholm", uid="u-new"))
    assert set(watch.pages()) == {"u-001", "u-new"}
    assert (root / "updates/u-001.html").is_file()
    watch.clear()
    clock.advance(60)
    publish(app, make_message(app, "web-borgholm", uid="u-newer"), retracted="remove")
    assert set(watch.pages()) == {"u-000", "u-001", "u-002", "u-new", "u-newer"}
    # rendered again, but written only where the bytes differ (here: nowhere but the new page)
    assert [s for s in watch.switched if s.startswith("updates/")] == ["updates/u-newer.html"]


def test_the_site_records_what_each_page_was_rendered_from(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    updates(app, clock, 2)
    data = json.loads((site(workspace_dir) / "announcements.json").read_text(encoding="utf-8"))
    renders = [e["render"] for e in data["announcements"]]
    assert len(set(renders)) == 2 and all(len(r) == 64 for r in renders)


def test_the_scaffold_documents_the_page_options_with_their_defaults(workspace_dir: Path) -> None:
    path = workspace_dir / "broadcaster.toml"
    text = path.read_text(encoding="utf-8")
    for line in ("# inline_updates = 10\n", '# retracted = "mark"\n'):
        assert line in text
        text = text.replace(line, line.removeprefix("# "), 1)
    path.write_text(text, encoding="utf-8")
    target = load_workspace(path, {}).config.target("web-borgholm")
    assert isinstance(target, WebsiteStaticTarget)
    assert (target.inline_updates, target.retracted) == (10, "mark")
    defaults = WebsiteStaticTarget.model_fields
    assert (defaults["inline_updates"].default, defaults["retracted"].default) == (10, "mark")


def test_the_preview_of_a_revision_already_shown_still_reads_its_page(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    (first,) = updates(app, clock, 1)
    channel = channel_for(app)
    rendered = channel.prepare(first)
    assert rendered.files is not None and "updates/u-000.html" in rendered.files
    assert "Publicerad 12 december 2026 kl. 21:00" in channel.readable(first, rendered)


def test_a_new_version_of_the_page_code_renders_every_page_once(
    app: App, workspace_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade that changes a filter (phone links, dates) must reach the earlier pages too."""
    updates(app, clock, 2)
    monkeypatch.setattr(static_site, "_code_fingerprint", lambda: "another version")
    watch = Watch(site(workspace_dir), monkeypatch)
    clock.advance(60)
    publish(app, make_message(app, "web-borgholm", uid="u-new"))
    assert set(watch.pages()) == {"u-000", "u-001", "u-new"}


def test_a_site_changed_between_preview_and_send_is_built_again(
    app: App, workspace_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker publishes in between: send must not switch the stale preview."""
    root = site(workspace_dir)
    updates(app, clock, 2)
    channel = channel_for(app)
    clock.advance(60)
    mine = make_message(app, "web-borgholm", uid="mine", title="Mitt")
    rendered = channel.prepare(mine)
    clock.advance(60)
    publish(app, make_message(app, "web-borgholm", uid="theirs", title="Deras"))
    watch = Watch(root, monkeypatch)
    asyncio.run(channel.send(mine, rendered))
    assert watch.pages() == ["mine"]  # built again, from the record as it is now
    index = (root / "index.html").read_text(encoding="utf-8")
    assert "Mitt" in index and "Deras" in index
    data = json.loads((root / "announcements.json").read_text(encoding="utf-8"))
    assert {e["uid"] for e in data["announcements"]} == {"u-000", "u-001", "mine", "theirs"}


def test_a_changed_template_between_preview_and_send_is_built_again(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    updates(app, clock, 1)
    channel = channel_for(app)
    clock.advance(60)
    message = make_message(app, "web-borgholm", uid="u-new")
    rendered = channel.prepare(message)
    override = workspace_dir / "templates" / "website" / "_entry.html"
    override.parent.mkdir(parents=True, exist_ok=True)
    bundled = app.renderer.bundled_dir / "website" / "_entry.html"
    override.write_text(
        bundled.read_text(encoding="utf-8").replace("Publicerad", "Utsänt"), encoding="utf-8"
    )
    asyncio.run(channel.send(message, rendered))
    for page in ("u-000", "u-new"):
        assert "Utsänt" in (site(workspace_dir) / f"updates/{page}.html").read_text("utf-8")
