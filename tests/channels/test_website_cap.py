"""CAP 1.2 alerts of the static site: valid against the official XSD, linked, escaped, written once.

The schema is OASIS's own (``specs/cap/CAP-v1.2.xsd``); a missing specs folder skips the
validating tests (and fails them in CI, which sets BROADCASTER_REQUIRE_SPECS=1).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import feedparser
import pytest
import xmlschema

from broadcaster.app import App
from broadcaster.approval import approve
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.channels.cap import CapSite, default_sender
from broadcaster.channels.website import WebsiteChannel
from broadcaster.config import Organisation, WebsiteStaticTarget
from broadcaster.dispatch import dispatch_revision
from broadcaster.model import AnnouncementState, RevisionKind, Severity
from broadcaster.queue.jobs import JobKind, enqueue_revision
from broadcaster.rendering.message import Message
from broadcaster.store.announcements import add_revision, get_announcement, set_state
from broadcaster.store.deliveries import NewDelivery, create_deliveries
from broadcaster.worker_runtime import run_worker
from tests.conftest import FakeClock, replace_config
from tests.factories import HOSTILE_BODY, HOSTILE_TITLE, make_message

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


@cache
def cap_schema(specs: Path) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(specs / "cap" / "CAP-v1.2.xsd")


def site(workspace_dir: Path, org: str = "borgholm") -> Path:
    return workspace_dir / "site" / org


def channel_for(app: App, target_id: str = "web-borgholm", **changes: Any) -> WebsiteChannel:
    target = app.config.target(target_id)
    assert isinstance(target, WebsiteStaticTarget)
    return WebsiteChannel(target.model_copy(update=changes), app.channel_context())


def publish(app: App, message: Message, **target_changes: Any) -> None:
    channel = channel_for(app, message.target.id, **target_changes)
    rendered = channel.prepare(message)
    assert rendered.problems == ()
    asyncio.run(channel.send(message, rendered))


def alerts(root: Path) -> dict[str, ET.Element]:
    """Every alert file of a site by identifier (checking the file is named after it)."""
    found = {}
    for path in sorted((root / "cap").glob("*.xml")):
        alert = ET.parse(path).getroot()  # noqa: S314 - our own output, not untrusted
        identifier = text(alert, "identifier")
        assert path.name == f"{identifier}.xml"
        found[identifier] = alert
    return found


def text(element: ET.Element, path: str) -> str:
    """The text at a path of CAP elements, e.g. ``info/area/areaDesc``."""
    found = element.find("/".join(CAP + part for part in path.split("/")))
    assert found is not None, path
    return found.text or ""


def absent(element: ET.Element, path: str) -> bool:
    return element.find("/".join(CAP + part for part in path.split("/"))) is None


def by_type(root: Path) -> dict[str, ET.Element]:
    return {text(a, "msgType"): a for a in alerts(root).values()}


def triple(alert: ET.Element) -> str:
    """How a later alert references this one (CAP 1.2: sender,identifier,sent)."""
    return ",".join(text(alert, name) for name in ("sender", "identifier", "sent"))


def cap_feed(root: Path) -> Any:
    feed = feedparser.parse((root / "cap" / "index.atom").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    return feed


def cap_href(entry: Any) -> str:
    """Where a feed entry's alert is (feedparser's ``link`` is for HTML links only)."""
    (link,) = [link for link in entry.links if link.type == "application/cap+xml"]
    return str(link.href)


def validate_all(root: Path, specs: Path) -> int:
    files = sorted((root / "cap").glob("*.xml"))
    for path in files:
        cap_schema(specs).validate(str(path))
    return len(files)


# ---------------------------------------------------------------------------------------------
# Through the worker: a new update, its correction and its retraction, to both municipalities.


def dispatched(app: App, severity: Severity = Severity.CRISIS) -> int:
    draft = create_draft(
        app,
        "kommunikator",
        DraftInput(title="Dricksvattnet", body="Koka vattnet före användning.", severity=severity),
    )
    submit(app, "kommunikator", draft.id)
    approve(app, "anna.hasselbom", draft.id)
    if not approve(app, "jens.odevall", draft.id).sending:  # a crisis is sent on approval
        dispatch_revision(app, "kommunikator", draft.id)
    return draft.id


def redispatch(app: App, announcement_id: int, kind: RevisionKind, title: str) -> None:
    """Dispatch a correction or retraction of a sent announcement.

    The lifecycle has no command for these yet, so the store's own functions do what that
    command will do in one transaction (as tests/test_receipts.py does): a revision, its
    deliveries and their jobs.
    """
    now = app.clock()
    with app.store.write() as conn:
        current = get_announcement(conn, announcement_id)
        content = dataclasses.replace(current.revision.content, title=title, kind=kind)
        number = current.revision.number + 1
        add_revision(conn, announcement_id, number, content, "kommunikator", now)
        set_state(
            conn,
            announcement_id,
            current.state,
            AnnouncementState.DISPATCHING,
            now,
            current_revision=number,
        )
        revision = get_announcement(conn, announcement_id).revision
        rows = [NewDelivery(target=t, channel="website") for t in content.targets]
        create_deliveries(
            conn, announcement_id=announcement_id, revision_id=revision.id, rows=rows, now=now
        )
        enqueue_revision(
            conn, revision_id=revision.id, kind=JobKind.DELIVER, run_at=now, priority=0, now=now
        )


def drain(app: App) -> int:
    return asyncio.run(run_worker(app, until_idle=True))


def test_alert_update_cancel_through_the_worker(
    db_app: App, workspace_dir: Path, clock: FakeClock, full_specs: Path
) -> None:
    announcement_id = dispatched(db_app)
    assert drain(db_app) == 2
    clock.advance(1800)
    redispatch(db_app, announcement_id, RevisionKind.CORRECTION, "Dricksvattnet (rättat)")
    assert drain(db_app) == 2
    clock.advance(3600)
    redispatch(db_app, announcement_id, RevisionKind.RETRACTION, "Dricksvattnet")
    assert drain(db_app) == 2

    for org, name, code, sender in (
        ("borgholm", "Borgholms kommun", "0885", "borgholm.se"),
        ("morbylanga", "Mörbylånga kommun", "0840", "morbylanga.se"),
    ):
        root = site(workspace_dir, org)
        assert validate_all(root, full_specs) == 3
        sent = by_type(root)
        first, update, cancel = sent["Alert"], sent["Update"], sent["Cancel"]
        assert [text(a, "sent") for a in (first, update, cancel)] == [
            "2026-12-12T20:30:00+01:00",
            "2026-12-12T21:00:00+01:00",
            "2026-12-12T22:00:00+01:00",
        ]
        assert absent(first, "references")
        assert text(update, "references") == triple(first)
        assert text(cancel, "references") == f"{triple(first)} {triple(update)}"
        for alert in (first, update, cancel):
            assert text(alert, "sender") == sender
            assert text(alert, "status") == "Actual" and absent(alert, "note")
            assert text(alert, "scope") == "Public"
            assert len(alert.findall(f"{CAP}info")) == 1
            assert text(alert, "info/language") == "sv-SE"
            assert text(alert, "info/area/areaDesc") == name
            assert text(alert, "info/area/geocode/valueName") == "SCB-kommunkod"
            assert text(alert, "info/area/geocode/value") == code
            assert text(alert, "info/category") == "Safety"
            assert text(alert, "info/senderName") == name
            # crisis: act now, serious, happening
            assert [text(alert, f"info/{f}") for f in ("urgency", "severity", "certainty")] == [
                "Immediate",
                "Severe",
                "Observed",
            ]
            assert text(alert, "info/description") == "Koka vattnet före användning."
            assert absent(alert, "info/instruction")  # announcements have none (yet)
            assert absent(alert, "info/web")  # no public_url, no link
        assert text(first, "info/headline") == "Dricksvattnet"
        assert text(update, "info/headline") == "Rättelse: Dricksvattnet (rättat)"
        assert text(cancel, "info/headline") == "Återkallat: Dricksvattnet"
        assert text(first, "info/contact").startswith(f"{name}, telefon 0485-")
        identifiers = [text(a, "identifier") for a in (first, update, cancel)]
        assert len(set(identifiers)) == 3
        assert all(i.startswith(f"{org}-") for i in identifiers)
        assert all(not set(i) & set(" ,<&") for i in identifiers)
        # The feed lists the announcement once, by its latest alert: the Cancel, for now.
        (entry,) = cap_feed(root).entries
        assert cap_href(entry) == f"{text(cancel, 'identifier')}.xml"
        assert entry.updated == "2026-12-12T22:00:00+01:00"


# ---------------------------------------------------------------------------------------------
# The parts, one at a time


def test_severity_maps_to_urgency_severity_certainty(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    expected = {
        Severity.INFO: ["Future", "Minor", "Observed"],
        Severity.IMPORTANT: ["Expected", "Moderate", "Observed"],
        Severity.CRISIS: ["Immediate", "Severe", "Observed"],
    }
    for severity in expected:
        clock.advance(60)
        publish(app, make_message(app, "web-borgholm", severity=severity, uid=str(severity)))
    found = {
        text(a, "identifier").split("-")[1]: [
            text(a, f"info/{f}") for f in ("urgency", "severity", "certainty")
        ]
        for a in alerts(site(workspace_dir)).values()
    }
    assert found == {str(s): grades for s, grades in expected.items()}


def test_exercise_mode_yields_exercise(app: App, workspace_dir: Path, full_specs: Path) -> None:
    replace_config(app, broadcaster=app.config.broadcaster.model_copy(update={"exercise": True}))
    message = make_message(app, "web-borgholm", title="Övningsmeddelande")
    assert message.exercise
    publish(app, message)
    root = site(workspace_dir)
    assert validate_all(root, full_specs) == 1
    (alert,) = alerts(root).values()
    assert text(alert, "status") == "Exercise"
    assert "Övning" in text(alert, "note")
    assert text(alert, "info/headline") == "ÖVNING: Övningsmeddelande"
    assert cap_feed(root).feed.title.startswith("ÖVNING")


def test_exercise_in_the_message_alone_is_enough(app: App, workspace_dir: Path) -> None:
    """The channel's context and the message both say whether it is an exercise; either wins."""
    message = dataclasses.replace(make_message(app, "web-borgholm"), exercise=True)
    assert not app.channel_context().exercise
    publish(app, message)
    (alert,) = alerts(site(workspace_dir)).values()
    assert text(alert, "status") == "Exercise"


#: Characters XML 1.0 cannot hold (authoring refuses them; an alert must survive them anyway).
CONTROL = "\x01\x08\x0b\x1f\ufffe"


def test_hostile_text_is_escaped(app: App, workspace_dir: Path, full_specs: Path) -> None:
    title = f"{HOSTILE_TITLE} &amp; ]]> <![CDATA[x]]> {CONTROL}slut"
    body = f"{HOSTILE_BODY}\n\n]]> <![CDATA[y]]> {CONTROL}"
    publish(app, make_message(app, "web-borgholm", title=title, body=body))
    root = site(workspace_dir)
    assert validate_all(root, full_specs) == 1
    (path,) = (root / "cap").glob("*.xml")
    raw = path.read_text(encoding="utf-8")
    assert "<script" not in raw and "<img" not in raw and "]]>" not in raw and "<![" not in raw
    assert "&lt;script&gt;" in raw and "]]&gt;" in raw and "&amp;amp;" in raw
    assert not any(c in raw for c in CONTROL)
    (alert,) = alerts(root).values()
    # Read back, the text is what was written, the characters XML cannot hold shown as U+FFFD.
    shown = title
    for character in CONTROL:
        shown = shown.replace(character, "\ufffd")
    assert text(alert, "info/headline") == shown
    description = text(alert, "info/description")
    assert '<script>alert("body")</script>' in description
    assert "]]> <![CDATA[y]]> \ufffd\ufffd\ufffd\ufffd\ufffd" in description
    feed = cap_feed(root)
    assert feed.entries[0].title == shown


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        (datetime(2026, 12, 12, 19, 30, tzinfo=UTC), "2026-12-12T20:30:00+01:00"),
        (datetime(2026, 7, 1, 10, 15, 59, 987654, tzinfo=UTC), "2026-07-01T12:15:59+02:00"),
        # the hour before and after the clocks go back (2026-10-25 03:00 summer → 02:00 winter)
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25T02:30:00+02:00"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25T02:30:00+01:00"),
    ],
)
def test_sent_is_local_time_with_offset(
    app: App, workspace_dir: Path, full_specs: Path, utc: datetime, local: str
) -> None:
    publish(app, make_message(app, "web-borgholm", at=utc))
    root = site(workspace_dir)
    assert validate_all(root, full_specs) == 1  # CAP's pattern: no Z, no fraction
    (alert,) = alerts(root).values()
    assert text(alert, "sent") == local
    assert cap_feed(root).entries[0].updated == local


def test_public_url_links_the_page_and_the_alerts(
    app: App, workspace_dir: Path, full_specs: Path
) -> None:
    url = "https://kris.borgholm.se/"
    message = make_message(app, "web-borgholm")
    publish(app, message, public_url=url)
    root = site(workspace_dir)
    assert validate_all(root, full_specs) == 1
    (identifier, alert), *_ = alerts(root).items()
    assert text(alert, "info/web") == f"{url}updates/{message.uid}.html"
    feed = cap_feed(root)
    assert [link.href for link in feed.feed.links if link.rel == "self"] == [f"{url}cap/index.atom"]
    cap_links = [link for link in feed.entries[0].links if link.type == "application/cap+xml"]
    assert [link.href for link in cap_links] == [f"{url}cap/{identifier}.xml"]


def test_without_public_url_web_is_the_announcements_link(app: App, workspace_dir: Path) -> None:
    message = make_message(app, "web-borgholm")
    content = dataclasses.replace(message.content, link="https://www.borgholm.se/vatten?a=1&b=2")
    publish(app, dataclasses.replace(message, content=content))
    root = site(workspace_dir)
    (alert,) = alerts(root).values()
    assert text(alert, "info/web") == "https://www.borgholm.se/vatten?a=1&b=2"
    assert "vatten?a=1&amp;b=2" in next((root / "cap").glob("*.xml")).read_text()


def test_cap_sender_is_configurable(app: App, workspace_dir: Path) -> None:
    borgholm = app.config.organisation("borgholm")
    assert default_sender(borgholm) == "borgholm.se"  # https://www.borgholm.se
    custom = borgholm.model_copy(update={"cap_sender": "krisinformation@borgholm.se"})
    assert default_sender(custom) == "krisinformation@borgholm.se"
    organisations = [custom if o.id == "borgholm" else o for o in app.config.organisations]
    replace_config(app, organisations=organisations)
    publish(app, make_message(app, "web-borgholm"))
    (alert,) = alerts(site(workspace_dir)).values()
    assert text(alert, "sender") == "krisinformation@borgholm.se"


@pytest.mark.parametrize("bad", ["kris borgholm", "a,b", "x<y", "x&y", ""])
def test_a_cap_sender_with_spaces_commas_or_markup_is_refused(app: App, bad: str) -> None:
    raw = app.config.organisation("borgholm").model_dump()
    with pytest.raises(ValueError, match="cap_sender"):
        Organisation.model_validate({**raw, "cap_sender": bad})


def test_feed_lists_current_alerts_each_linking_its_file(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    root = site(workspace_dir)
    publish(app, make_message(app, "web-borgholm", title="Vatten", uid="u-water"))
    clock.advance(600)
    publish(app, make_message(app, "web-borgholm", title="Skolor", uid="u-school"))
    clock.advance(600)
    retraction = make_message(
        app,
        "web-borgholm",
        title="Vatten",
        uid="u-water",
        revision=2,
        kind=RevisionKind.RETRACTION,
    )
    publish(app, retraction)
    feed = cap_feed(root)
    assert feed.feed.title == "Borgholms kommun: varningar i CAP-format"
    assert [e.title for e in feed.entries] == ["Återkallat: Vatten", "Skolor"]  # newest first
    for entry in feed.entries:
        (link,) = [link for link in entry.links if link.type == "application/cap+xml"]
        assert (root / "cap" / link.href).is_file()  # relative to cap/index.atom
    assert cap_href(feed.entries[0]) == "borgholm-u-water-r2.xml"
    # The Cancel stays for 48 hours after it was sent, so that readers learn of it ...
    clock.advance(47 * 3600)
    publish(app, make_message(app, "web-borgholm", title="Ström", uid="u-power"))
    assert [e.title for e in cap_feed(root).entries] == ["Ström", "Återkallat: Vatten", "Skolor"]
    # ... then it leaves the feed; its file stays, as later references may name it.
    clock.advance(2 * 3600)
    publish(app, make_message(app, "web-borgholm", title="Bussar", uid="u-bus"))
    assert [e.title for e in cap_feed(root).entries] == ["Bussar", "Ström", "Skolor"]
    assert (root / "cap" / "borgholm-u-water-r2.xml").is_file()


def test_a_retraction_of_what_the_site_never_showed_gets_no_alert(
    app: App, workspace_dir: Path
) -> None:
    publish(
        app,
        make_message(app, "web-borgholm", uid="u-1", revision=2, kind=RevisionKind.RETRACTION),
    )
    root = site(workspace_dir)
    assert alerts(root) == {}
    assert cap_feed(root).entries == []


def test_a_correction_of_what_the_site_never_showed_is_an_alert(
    app: App, workspace_dir: Path
) -> None:
    publish(
        app,
        make_message(app, "web-borgholm", uid="u-1", revision=2, kind=RevisionKind.CORRECTION),
    )
    (alert,) = alerts(site(workspace_dir)).values()
    assert text(alert, "msgType") == "Alert" and absent(alert, "references")


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in (root / "cap").iterdir()
    }


def test_publishing_twice_changes_nothing_and_an_older_revision_never_wins(
    app: App, workspace_dir: Path, clock: FakeClock
) -> None:
    root = site(workspace_dir)
    original = make_message(app, "web-borgholm", uid="u-1", title="Fel")
    publish(app, original)
    clock.advance(600)
    correction = make_message(
        app,
        "web-borgholm",
        uid="u-1",
        revision=2,
        title="Rätt",
        kind=RevisionKind.CORRECTION,
        published=original.published_at,
    )
    publish(app, correction)
    before = snapshot(root)
    assert sorted(before) == [
        "cap/borgholm-u-1-r1.xml",
        "cap/borgholm-u-1-r2.xml",
        "cap/index.atom",
    ]
    publish(app, correction)  # the same revision again
    publish(app, original)  # a late retry of the first
    assert snapshot(root) == before  # not even rewritten
    assert [e.title for e in cap_feed(root).entries] == ["Rättelse: Rätt"]


def test_a_new_revision_writes_only_its_alert_and_the_feed(
    app: App, workspace_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point 5 of issue 12: earlier alerts are neither rendered nor written again."""
    root = site(workspace_dir)
    for number in range(5):
        clock.advance(60)
        publish(app, make_message(app, "web-borgholm", uid=f"u-{number}"))
    rendered: list[str] = []
    real_alert = CapSite.alert

    def counting_alert(self: CapSite, entry: dict[str, Any]) -> str:
        rendered.append(entry["cap"][-1]["identifier"])
        return real_alert(self, entry)

    monkeypatch.setattr(CapSite, "alert", counting_alert)
    real_replace = os.replace
    switched: list[str] = []

    def watching_replace(src: str | Path, dst: str | Path) -> None:
        target = Path(dst)
        if target.is_relative_to(root):
            switched.append(target.relative_to(root).as_posix())
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    clock.advance(60)
    publish(
        app,
        make_message(app, "web-borgholm", uid="u-2", revision=2, kind=RevisionKind.CORRECTION),
    )
    # (prepare renders what send then writes: the one new alert, never an earlier one)
    assert set(rendered) == {"borgholm-u-2-r2"}
    assert [name for name in switched if name.startswith("cap/")] == [
        "cap/borgholm-u-2-r2.xml",
        "cap/index.atom",
    ]


def test_an_alert_is_in_place_before_any_feed_links_it(
    app: App, workspace_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = site(workspace_dir)
    real_replace = os.replace
    switched: list[str] = []
    missing: list[str] = []

    def watching_replace(src: str | Path, dst: str | Path) -> None:
        target = Path(dst)
        if target.is_relative_to(root):
            name = target.relative_to(root).as_posix()
            switched.append(name)
            if name == "cap/index.atom":
                feed = feedparser.parse(Path(src).read_bytes())
                hrefs = [link.href for e in feed.entries for link in e.links]
                missing.extend(
                    h for h in hrefs if h.endswith(".xml") and not (root / "cap" / h).exists()
                )
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    for number in range(3):
        clock.advance(60)
        switched.clear()
        publish(app, make_message(app, "web-borgholm", uid=f"u-{number}"))
        assert switched[0] == f"cap/borgholm-u-{number}-r1.xml", switched
        assert switched.index("cap/index.atom") < switched.index("index.html")
        assert switched[-1] == "announcements.json"
    assert missing == []


def test_the_page_points_to_the_cap_feed(app: App, workspace_dir: Path) -> None:
    publish(app, make_message(app, "web-borgholm"))
    index = (site(workspace_dir) / "index.html").read_text(encoding="utf-8")
    assert 'type="application/atom+xml"' in index and 'href="cap/index.atom"' in index


def test_the_preview_shows_the_alert_and_writes_nothing(app: App, workspace_dir: Path) -> None:
    message = make_message(app, "web-borgholm", uid="u-1")
    files = channel_for(app).prepare(message).files
    assert files is not None
    assert "cap/borgholm-u-1-r1.xml" in files and "cap/index.atom" in files
    assert "<msgType>Alert</msgType>" in files["cap/borgholm-u-1-r1.xml"]
    assert not site(workspace_dir).exists()
