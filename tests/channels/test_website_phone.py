"""The crisis page on a phone: addresses are links that wrap, numbers are whole tap-to-call links.

The structure is checked here on the HTML; the tests marked ``browser`` open the page in headless
Chromium: it fits a 360-pixel-wide phone, reads as it should, logs no error, and axe-core finds
no WCAG 2.1 A or AA violation, on a desktop and on the phone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path
from typing import Any

import html5lib
import pytest

from broadcaster.app import App
from broadcaster.channels.website import WebsiteChannel
from broadcaster.config import WebsiteStaticTarget
from broadcaster.model import RevisionKind
from broadcaster.rendering.markup import markdown_to_html, markdown_to_text
from broadcaster.rendering.message import Message
from tests.browser import chromium
from tests.conftest import FakeClock
from tests.factories import make_message

HTML_NS = "{http://www.w3.org/1999/xhtml}"
NBSP = "\u00a0"
LONG_URL = (
    "https://www.borgholm.se/kommun-och-politik/krisinformation/dataintrang-december-2026/"
    "fragor-och-svar-om-kommunens-e-tjanster?utm_source=broadcaster&utm_medium=krissida"
)
BODY = f"""\
Ring servicecenter 0485-880 00 eller kommunchefen på 070-123 45 67 (+46 70 765 43 21 i helgen).
Vid fara för liv: 112. Information om allvarliga händelser: 113 13.

Läs mer på {LONG_URL}. Eller på www.morbylanga.se.

Kommunkod 0885. Nästa uppdatering 2026-12-13 kl. 08:00."""

#: number as written -> what a tap dials
NUMBERS = {
    "0485-880 00": "tel:+4648588000",
    "070-123 45 67": "tel:+46701234567",
    "+46 70 765 43 21": "tel:+46707654321",
    "112": "tel:112",
    "113 13": "tel:11313",
}


def publish(app: App, workspace_dir: Path) -> Path:
    target = app.config.target("web-borgholm")
    assert target is not None
    adapter = app.registry.create(target, app.channel_context())
    assert isinstance(adapter, WebsiteChannel)
    message = make_message(app, "web-borgholm", body=BODY, title="Dataintrång: så når du oss")
    rendered = adapter.prepare(message)
    assert rendered.problems == ()
    asyncio.run(adapter.send(message, rendered))
    return workspace_dir / "site" / "borgholm"


def links(path: Path) -> list[tuple[str, str, str]]:
    """(href, class, text) of every link on the page."""
    document = html5lib.HTMLParser(strict=True).parse(path.read_bytes())
    return [
        (a.get("href") or "", a.get("class") or "", "".join(a.itertext()))
        for a in document.iter(f"{HTML_NS}a")
    ]


@pytest.fixture
def site(app: App, workspace_dir: Path) -> Path:
    return publish(app, workspace_dir)


@pytest.mark.parametrize("page", ["index.html", "update"])
def test_numbers_are_whole_tel_links_and_addresses_are_links(site: Path, page: str) -> None:
    path = site / "index.html" if page == "index.html" else next((site / "updates").iterdir())
    found = links(path)
    tel = {text: href for href, css, text in found if href.startswith("tel:")}
    for written, dial in NUMBERS.items():
        shown = written.replace(" ", NBSP)
        assert tel.get(shown) == dial, (written, tel)
    assert all(" " not in text for text in tel)  # no ordinary space to break at
    assert all(css == "tel" for href, css, _ in found if href.startswith("tel:"))
    # The footer's own number and the contact line's too
    assert tel.get(f"0485-880{NBSP}00") == "tel:+4648588000"
    assert tel.get(f"0485-880{NBSP}10") == "tel:+4648588010"
    addresses = {text: href for href, _, text in found if href.startswith("http")}
    assert addresses[LONG_URL] == LONG_URL  # written out, so the reader sees where it goes
    assert addresses["www.morbylanga.se"] == "https://www.morbylanga.se"
    # Not numbers: a municipality code, a date, a time
    linked_text = " ".join(text for _, _, text in found)
    assert "0885" not in linked_text and "2026-12-13" not in linked_text


def css_rules(path: Path) -> dict[str, str]:
    style = re.search(r"<style>(.*?)</style>", path.read_text(encoding="utf-8"), re.S)
    assert style
    return {
        selector.strip(): body
        for selector, body in re.findall(r"([^{}/]+)\{([^}]*)\}", style.group(1))
    }


def test_long_words_wrap_and_numbers_do_not(site: Path) -> None:
    rules = css_rules(site / "index.html")
    wrapping = next(body for selector, body in rules.items() if ".wrap" in selector.split(","))
    assert "overflow-wrap: anywhere" in wrapping
    assert "white-space: nowrap" in rules["a.tel"]
    assert "pre-wrap" in rules["pre"]


def test_plain_text_channels_keep_ordinary_spaces() -> None:
    """A non-breaking space is not GSM 03.38: in an SMS it would force UCS-2 (3x the cost)."""
    text = markdown_to_text(BODY)
    assert NBSP not in text and "tel:" not in text
    assert "0485-880 00" in text and LONG_URL in text


def test_links_the_author_wrote_are_left_alone() -> None:
    html = markdown_to_html(f"[Frågor och svar]({LONG_URL}) och [ring oss](tel:+4648588000)")
    assert html.count("<a ") == 2
    assert f'<a href="{LONG_URL.replace("&", "&amp;")}">Frågor och svar</a>' in html


# ---------------------------------------------------------------------------------------------
# A real browser: headless Chromium over the DevTools protocol (tests/browser.py), axe-core for
# WCAG 2.1 A and AA, at a desktop width and on a 360-pixel-wide phone. CI installs Chromium and
# sets BROADCASTER_REQUIRE_BROWSER=1, so there these tests run or fail, never skip.

DESKTOP = (1280, 900, False)
PHONE = (360, 740, True)

#: Runs in the page: what a phone's reader would have to scroll sideways for, and the numbers.
MEASURE = """(() => {
  const root = document.documentElement;
  const tel = [...document.querySelectorAll("a.tel")];
  const wide = [...document.querySelectorAll("body *")].filter(
    e => e.getBoundingClientRect().right > root.clientWidth + 0.5);
  return {
    width: root.clientWidth, scroll: root.scrollWidth, tel: tel.length,
    broken: tel.filter(a => a.getClientRects().length > 1).map(a => a.textContent),
    wide: wide.map(e => e.tagName + ": " + e.textContent.slice(0, 40))};
})()"""
#: Runs in the page: its text as rendered, and every link.
READ = """({
  text: document.body.innerText,
  links: [...document.querySelectorAll("a")].map(a => [a.getAttribute("href"), a.textContent]),
  lang: document.documentElement.lang,
  scripts: document.scripts.length})"""


@pytest.mark.browser
def test_page_fits_a_phone_in_chromium(site: Path, tmp_path: Path) -> None:
    with chromium(tmp_path / "profile") as browser:
        for page in (site / "index.html", next((site / "updates").iterdir())):
            opened = browser.open(page.as_uri(), *PHONE[:2], mobile=PHONE[2])
            figures = opened.evaluate(MEASURE)
            assert figures["width"] == 360, figures
            assert figures["scroll"] <= 360, figures  # nothing scrolls sideways
            assert figures["wide"] == [], figures  # no element reaches past the right edge
            assert figures["tel"] >= 7 and figures["broken"] == [], figures  # no number wraps


def crisis_site(app: App, clock: FakeClock, root: Path, **changes: Any) -> dict[str, Path]:
    """A site in exercise mode with more updates than the index inlines, among them one with
    phone numbers and addresses that was corrected, and one that was retracted."""
    target = app.config.target("web-borgholm")
    assert isinstance(target, WebsiteStaticTarget)
    context = dataclasses.replace(app.channel_context(), exercise=True)
    update = {"output_dir": str(root), **changes}
    channel = WebsiteChannel(target.model_copy(update=update), context)

    def send(message: Message) -> None:
        asyncio.run(channel.send(message, channel.prepare(message)))

    for number in range(12):
        clock.advance(1800)
        send(make_message(app, "web-borgholm", uid=f"u-{number:02d}", title=f"Lägesbild {number}"))
    clock.advance(600)
    first = make_message(app, "web-borgholm", uid="ring", title="Så når du oss", body=BODY)
    send(first)
    clock.advance(600)
    corrected = make_message(
        app,
        "web-borgholm",
        uid="ring",
        revision=2,
        kind=RevisionKind.CORRECTION,
        title="Så når du oss (nya nummer)",
        body=BODY,
        published=first.published_at,
    )
    send(corrected)
    withdrawn = make_message(app, "web-borgholm", uid="u-11", title="Lägesbild 11")
    clock.advance(600)
    retraction = make_message(
        app,
        "web-borgholm",
        uid="u-11",
        revision=2,
        kind=RevisionKind.RETRACTION,
        title="Lägesbild 11",
        body="Skolan behöver inte utrymmas.",
        published=withdrawn.published_at,
    )
    send(retraction)
    return {
        "index": root / "index.html",
        "corrected": root / "updates" / "ring.html",
        "retracted": root / "updates" / "u-11.html",
    }


@pytest.mark.browser
def test_the_crisis_page_in_chromium_has_no_wcag_21_aa_violations(
    app: App, clock: FakeClock, workspace_dir: Path, tmp_path: Path
) -> None:
    """Rendered text, tel: links, no console errors, a screenshot, and axe: zero violations."""
    pages = crisis_site(app, clock, workspace_dir / "site" / "borgholm")
    removed = crisis_site(app, clock, workspace_dir / "site" / "removed", retracted="remove")
    pages["removed"] = removed["retracted"]
    with chromium(tmp_path / "profile") as browser:
        for width, height, mobile in (DESKTOP, PHONE):
            for name, path in pages.items():
                page = browser.open(path.as_uri(), width, height, mobile=mobile)
                where = f"{name} at {width} px"
                assert page.problems == [], where  # no console errors, nothing failed to load
                shot = page.screenshot(tmp_path / f"{name}-{width}.png")
                assert shot.read_bytes().startswith(b"\x89PNG"), where
                seen = page.evaluate(READ)
                assert (seen["lang"], seen["scripts"]) == ("sv", 0), where
                check_text(name, seen["text"], seen["links"])
                result = page.axe()
                assert result["passes"] > 10, where  # the rules did run
                assert result["violations"] == [], (where, result["violations"])


def check_text(name: str, text: str, links: list[list[str]]) -> None:
    """What a reader sees on each page, as Chromium rendered it."""
    tel = {shown: href for href, shown in links if href.startswith("tel:")}
    assert "ÖVNING" in text
    assert tel.get(f"0485-880{NBSP}00") == "tel:+4648588000"  # the organisation's own number
    if name == "removed":
        assert "Meddelandet är återkallat" in text and "Skolan" not in text
        return
    if name in ("index", "retracted"):
        assert "Det här meddelandet är återkallat och gäller inte längre." in text
        assert "Skolan behöver inte utrymmas." in text
    if name in ("index", "corrected"):
        assert "Rättelse: texten nedan ersätter en tidigare version av meddelandet." in text
        assert "rättad 13 december 2026 kl. 02:50" in text
        for written, dial in NUMBERS.items():
            assert tel.get(written.replace(" ", NBSP)) == dial, (written, tel)
    if name == "index":
        assert "Senast uppdaterad 13 december 2026 kl. 03:00" in text
        older = [href for href, _ in links if href.startswith("updates/u-0")]
        # ten inlined (their titles link their pages), the three oldest linked below them
        assert "Tidigare meddelanden" in text
        assert older[-3:] == ["updates/u-02.html", "updates/u-01.html", "updates/u-00.html"]
        assert text.index("Tidigare meddelanden") < text.index("Lägesbild 0")
