"""The static website channel: accessible, escaped, valid, idempotent, atomic."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta
from pathlib import Path

import feedparser
import html5lib
import pytest

from broadcaster.app import App
from broadcaster.channels.website import WebsiteChannel
from broadcaster.config import WebsiteStaticTarget
from broadcaster.errors import TransientError
from broadcaster.model import RevisionKind
from broadcaster.rendering.message import Message
from tests.factories import HOSTILE_BODY, HOSTILE_TITLE, make_message

HTML_NS = "{http://www.w3.org/1999/xhtml}"


def adapter_for(app: App, target_id: str = "web-borgholm") -> WebsiteChannel:
    target = app.config.target(target_id)
    assert target is not None
    channel = app.registry.create(target, app.channel_context())
    assert isinstance(channel, WebsiteChannel)
    return channel


def publish(app: App, message: Message) -> str:
    adapter = adapter_for(app, message.target.id)
    rendered = adapter.prepare(message)
    assert rendered.problems == ()
    return asyncio.run(adapter.send(message, rendered)).platform_id


def site(workspace_dir: Path, org: str = "borgholm") -> Path:
    return workspace_dir / "site" / org


def parse_html(path: Path):  # type: ignore[no-untyped-def]
    # Strict mode raises on any parse error, so this also checks the markup is well-formed HTML.
    return html5lib.HTMLParser(strict=True).parse(path.read_bytes())


def test_publish_writes_page_feed_and_json(app: App, workspace_dir: Path) -> None:
    message = make_message(app, "web-borgholm")
    platform_id = publish(app, message)
    root = site(workspace_dir)
    assert platform_id == f"updates/{message.uid}.html"
    assert {p.name for p in root.iterdir()} == {
        "index.html",
        "feed.atom",
        "announcements.json",
        "updates",
        "cap",  # CAP 1.2 alerts and their feed: tests/channels/test_website_cap.py
    }
    assert (root / platform_id).is_file()
    assert not (site(workspace_dir, "morbylanga")).exists()  # only this target's folder


def test_page_is_accessible_and_has_no_javascript(app: App, workspace_dir: Path) -> None:
    publish(app, make_message(app, "web-borgholm"))
    document = parse_html(site(workspace_dir) / "index.html")
    assert document.get("lang") == "sv"
    assert document.find(f".//{HTML_NS}main") is not None
    assert document.find(f".//{HTML_NS}article") is not None
    assert document.findall(f".//{HTML_NS}script") == []
    viewport = [m for m in document.iter(f"{HTML_NS}meta") if m.get("name") == "viewport"]
    assert viewport and "width=device-width" in viewport[0].get("content", "")
    text = (site(workspace_dir) / "index.html").read_text(encoding="utf-8")
    assert "12 december 2026 kl. 20:30" in text  # 19:30 UTC in Stockholm
    assert 'href="tel:+4648588000">0485-880\u00a000</a>' in text  # one tap; never wrapped
    # the organisation's contact line, its number a link too
    assert (
        'Kommunchef Jens Odevall, <a class="tel" href="tel:+4648588010">0485-880\u00a010</a>'
        in text
    )


def test_hostile_text_is_escaped_everywhere(app: App, workspace_dir: Path) -> None:
    message = make_message(app, "web-borgholm", title=HOSTILE_TITLE, body=HOSTILE_BODY)
    page = publish(app, message)
    root = site(workspace_dir)
    for path in (root / "index.html", root / page):
        document = parse_html(path)
        assert document.findall(f".//{HTML_NS}script") == [], path
        assert document.findall(f".//{HTML_NS}img") == [], path
        hrefs = [a.get("href") for a in document.iter(f"{HTML_NS}a")]
        assert not any(h and h.startswith("javascript") for h in hrefs)
        assert "https://www.borgholm.se/?a=1&b=2" in hrefs  # the real link survives intact
        text = "".join(document.itertext())
        assert HOSTILE_TITLE in text  # shown to the reader exactly as written
    feed = feedparser.parse((root / "feed.atom").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.entries[0].title == HOSTILE_TITLE
    assert "&lt;script&gt;" in feed.entries[0].content[0].value
    data = json.loads((root / "announcements.json").read_text(encoding="utf-8"))
    assert data["announcements"][0]["title"] == HOSTILE_TITLE


def test_feed_is_valid_atom_with_stable_ids(app: App, workspace_dir: Path) -> None:
    first = make_message(app, "web-borgholm", title="Första")
    publish(app, first)
    app.clock.advance(600)  # type: ignore[attr-defined]
    second = make_message(app, "web-borgholm", title="Andra")
    publish(app, second)
    feed = feedparser.parse((site(workspace_dir) / "feed.atom").read_bytes())
    assert not feed.bozo
    assert [e.title for e in feed.entries] == ["Andra", "Första"]  # newest first
    assert feed.entries[0].id == f"urn:uuid:{second.uid}"
    assert feed.feed.updated == "2026-12-12T19:40:00+00:00"
    again = feedparser.parse((site(workspace_dir) / "feed.atom").read_bytes())
    assert again.feed.id == feed.feed.id and feed.feed.id.startswith("urn:uuid:")


def test_index_lists_newest_update_first(app: App, workspace_dir: Path) -> None:
    publish(app, make_message(app, "web-borgholm", title="Klockan åtta"))
    app.clock.advance(3600)  # type: ignore[attr-defined]
    publish(app, make_message(app, "web-borgholm", title="Klockan nio"))
    text = (site(workspace_dir) / "index.html").read_text(encoding="utf-8")
    assert text.index("Klockan nio") < text.index("Klockan åtta")


def test_publishing_twice_changes_nothing(app: App, workspace_dir: Path) -> None:
    message = make_message(app, "web-borgholm")
    publish(app, message)
    root = site(workspace_dir)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    stamps = {p: p.stat().st_mtime_ns for p in before}
    publish(app, message)
    assert {p: p.read_bytes() for p in before} == before
    assert {p: p.stat().st_mtime_ns for p in before} == stamps  # not even rewritten


def test_correction_replaces_and_an_older_revision_never_wins(
    app: App, workspace_dir: Path
) -> None:
    original = make_message(app, "web-borgholm", title="Fel tid", uid="u-1")
    publish(app, original)
    app.clock.advance(1800)  # type: ignore[attr-defined]
    corrected = make_message(
        app,
        "web-borgholm",
        title="Rätt tid",
        uid="u-1",
        revision=2,
        kind=RevisionKind.CORRECTION,
        published=original.published_at,
    )
    publish(app, corrected)
    publish(app, original)  # a late retry of revision 1 must not undo the correction
    data = json.loads((site(workspace_dir) / "announcements.json").read_text(encoding="utf-8"))
    (entry,) = data["announcements"]
    assert (entry["title"], entry["revision"], entry["kind"]) == ("Rätt tid", 2, "correction")
    assert entry["published"] == "2026-12-12T19:30:00+00:00"
    assert entry["updated"] == "2026-12-12T20:00:00+00:00"
    text = (site(workspace_dir) / "index.html").read_text(encoding="utf-8")
    assert "Rättelse" in text and "Fel tid" not in text


def test_verify_tells_whether_a_revision_is_shown(app: App) -> None:
    message = make_message(app, "web-borgholm")
    adapter = adapter_for(app)
    assert asyncio.run(adapter.verify(message)) is None
    publish(app, message)
    receipt = asyncio.run(adapter.verify(message))
    assert receipt is not None and receipt.platform_id == f"updates/{message.uid}.html"


def test_readers_never_see_a_partial_file(app: App, workspace_dir: Path) -> None:
    """Publish many updates while another thread keeps reading the pages."""
    index = site(workspace_dir) / "index.html"
    publish(app, make_message(app, "web-borgholm", body="Start. " * 2000))
    stop = threading.Event()
    seen: list[str] = []
    broken: list[str] = []

    def read_forever() -> None:
        while not stop.is_set():
            text = index.read_text(encoding="utf-8")
            seen.append(text[-8:])
            if not text.startswith("<!doctype html>") or not text.rstrip().endswith("</html>"):
                broken.append(text[-200:])

    reader = threading.Thread(target=read_forever)
    reader.start()
    try:
        for number in range(30):
            app.clock.advance(60)  # type: ignore[attr-defined]
            publish(
                app, make_message(app, "web-borgholm", title=f"Nr {number}", body="Mer. " * 3000)
            )
    finally:
        stop.set()
        reader.join()
    assert len(seen) > 30
    assert broken == []


def test_unwritable_folder_is_a_transient_error(app: App, workspace_dir: Path) -> None:
    (workspace_dir / "site").mkdir(exist_ok=True)
    (workspace_dir / "site" / "borgholm").write_text("a file where the folder should be")
    adapter = adapter_for(app)
    message = make_message(app, "web-borgholm")
    with pytest.raises(TransientError, match="cannot write"):
        asyncio.run(adapter.send(message, adapter.prepare(message)))


def test_publish_command_runs_and_its_failure_is_retried(app: App, workspace_dir: Path) -> None:
    target = app.config.target("web-borgholm")
    assert isinstance(target, WebsiteStaticTarget)
    marker = workspace_dir / "published.txt"
    good = target.model_copy(
        update={"publish_command": ["sh", "-c", f"ls site/borgholm > {marker}"]}
    )
    channel = WebsiteChannel(good, app.channel_context())
    message = make_message(app, "web-borgholm")
    asyncio.run(channel.send(message, channel.prepare(message)))
    assert "index.html" in marker.read_text()
    bad = target.model_copy(
        update={"publish_command": ["sh", "-c", "echo no route to backup >&2; exit 3"]}
    )
    failing = WebsiteChannel(bad, app.channel_context())
    # Another delivery: this one is published, and a delivery's publish runs once (see
    # test_publish_step.py for retries, timeouts and crashes).
    app.clock.advance(60)  # type: ignore[attr-defined]
    other = make_message(app, "web-borgholm", title="Nästa")
    with pytest.raises(TransientError, match="exited with 3: no route to backup"):
        asyncio.run(failing.send(other, failing.prepare(other)))


def test_exercise_mode_marks_every_output(app: App, workspace_dir: Path) -> None:
    context = app.channel_context()
    exercise = type(context)(**{**context.__dict__, "exercise": True})
    target = app.config.target("web-borgholm")
    assert target is not None
    channel = WebsiteChannel(target, exercise)
    message = make_message(app, "web-borgholm", title="Övningsmeddelande")
    asyncio.run(channel.send(message, channel.prepare(message)))
    root = site(workspace_dir)
    assert "ÖVNING" in (root / "index.html").read_text(encoding="utf-8")
    feed = feedparser.parse((root / "feed.atom").read_bytes())
    assert feed.entries[0].title.startswith("ÖVNING")
    assert json.loads((root / "announcements.json").read_text())["exercise"] is True


def test_preview_writes_nothing(app: App, workspace_dir: Path) -> None:
    adapter = adapter_for(app)
    rendered = adapter.prepare(make_message(app, "web-borgholm"))
    assert rendered.files is not None and "index.html" in rendered.files
    assert not site(workspace_dir).exists()


def test_times_move_with_the_clock(app: App) -> None:
    message = make_message(app, "web-borgholm", at=app.clock() + timedelta(hours=5))
    files = adapter_for(app).prepare(message).files
    assert files is not None
    assert "13 december 2026 kl. 01:30" in files["index.html"]
