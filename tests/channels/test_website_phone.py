"""The crisis page on a phone: addresses are links that wrap, numbers are whole tap-to-call links.

The structure is checked here on the HTML; ``test_page_fits_a_phone_in_chromium`` (marker
``browser``) measures the page at 360 px in a real browser when Chromium is installed.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import html5lib
import pytest

from broadcaster.app import App
from broadcaster.channels.website import WebsiteChannel
from broadcaster.rendering.markup import markdown_to_html, markdown_to_text
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
# A real browser at 360 px (CI installs Chromium)

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)

#: Runs inside the page, in a 360 px frame, and reports to the frame's parent.
MEASURE = """
<script>
window.addEventListener("load", () => {
  const root = document.documentElement;
  const tel = [...document.querySelectorAll("a.tel")];
  const wide = [...document.querySelectorAll("body *")].filter(
    e => e.getBoundingClientRect().right > root.clientWidth + 0.5);
  parent.postMessage(JSON.stringify({
    width: root.clientWidth, scroll: root.scrollWidth, tel: tel.length,
    broken: tel.filter(a => a.getClientRects().length > 1).map(a => a.textContent),
    wide: wide.map(e => e.tagName + ": " + e.textContent.slice(0, 40))}), "*");
});
</script>
"""
#: Headless Chromium will not open a window narrower than about 500 px; a frame can be 360.
PHONE = """<!doctype html><title>waiting</title>
<iframe src="page.html" style="width:360px;height:6000px;border:0"></iframe>
<script>window.addEventListener("message", e => { document.title = e.data; });</script>
"""


def measure_in_chromium(page: Path, tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "page.html").write_text(
        page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), "utf-8"
    )
    phone = tmp_path / "phone.html"
    phone.write_text(PHONE, "utf-8")
    assert CHROMIUM is not None
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=800,900",
            "--force-device-scale-factor=1",
            "--virtual-time-budget=5000",
            "--dump-dom",
            phone.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    title = re.search(r"<title>(.*?)</title>", run.stdout, re.S)
    assert title and title.group(1) != "waiting", run.stdout[-1000:] + run.stderr[-2000:]
    return dict(json.loads(html.unescape(title.group(1))))


@pytest.mark.browser
def test_page_fits_a_phone_in_chromium(site: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        message = "needs Chromium (apt-get install chromium)"
        if os.environ.get("BROADCASTER_REQUIRE_BROWSER") == "1":  # .ci/run installs it
            pytest.fail(message)
        pytest.skip(message)
    for page in (site / "index.html", next((site / "updates").iterdir())):
        figures = measure_in_chromium(page, tmp_path)
        assert figures["width"] == 360, figures
        assert figures["scroll"] <= 360, figures  # nothing scrolls sideways
        assert figures["wide"] == [], figures  # no element reaches past the right edge
        assert figures["tel"] >= 7 and figures["broken"] == [], figures  # no number wraps
