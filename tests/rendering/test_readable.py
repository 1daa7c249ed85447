"""Readable text: what preview shows an approver, for every channel through one hook."""

from __future__ import annotations

from typing import ClassVar

import pytest

from broadcaster.app import App
from broadcaster.channels.base import Channel, Receipt, Rendered
from broadcaster.rendering.message import Message
from broadcaster.rendering.readable import html_to_text, wrap_text
from tests.factories import HOSTILE_BODY, HOSTILE_TITLE, make_message

LONG_URL = "https://www.borgholm.se/" + "a-very-long-path/" * 6


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Ring <a href='https://x.se/a'>oss</a>.</p>", "Ring oss (https://x.se/a)."),
        # An address shown as its own text is not repeated; tel: links show the number only.
        ("<p><a href='https://x.se'>https://x.se</a></p>", "https://x.se"),
        ("<p><a href='tel:+46485880'>0485-880 00</a></p>", "0485-880 00"),
        ("<p><a href='mailto:a@x.se'>a@x.se</a></p>", "a@x.se"),
        # Relative links say nothing to a reader without the site's address.
        ("<p><a href='../index.html'>Alla</a></p>", "Alla"),
        # Invisible and navigation-only parts are left out.
        ("<head><title>T</title><style>p{}</style></head><p>Text</p>", "Text"),
        ("<a class='skip' href='#main'>Till innehållet</a><p>Text</p>", "Text"),
        ("<p hidden>Dold</p><p>Synlig</p>", "Synlig"),
        ("<script>alert(1)</script><p>Text</p>", "Text"),
        ("<p>&lt;script&gt; &amp; &quot;citat&quot;</p>", '<script> & "citat"'),
        ("<h1>Rubrik</h1><p>Text</p>", "Rubrik\n======\n\nText"),
        ("<ul><li>ett</li><li>två</li></ul><p>sen</p>", "• ett\n• två\n\nsen"),
        ("<ol start='3'><li><p>tre</p></li><li>fyra</li></ol>", "3. tre\n4. fyra"),
        ("<ul><li>a</li></ul><ul><li>b</li></ul>", "• a\n\n• b"),
        ("<ul><li>a<ul><li>b</li></ul></li></ul>", "• a\n  • b"),
        ("<p>rad ett<br>rad två</p>", "rad ett\nrad två"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected + "\n"


def test_relative_links_resolve_against_the_public_address() -> None:
    html = "<p><a href='../feed.atom'>Prenumerera</a></p>"
    text = html_to_text(html, base_url="https://kris.borgholm.se/updates/x.html")
    assert text == "Prenumerera (https://kris.borgholm.se/feed.atom)\n"


def test_wrapping_keeps_addresses_whole() -> None:
    words = " ".join(["ord"] * 40)
    text = html_to_text(f"<p>{words} <a href='{LONG_URL}'>här</a> {words}</p>")
    lines = text.splitlines()
    assert all(len(line) <= 72 for line in lines if LONG_URL not in line)
    assert any(LONG_URL in line for line in lines)
    assert wrap_text("• " + words, 40).splitlines()[1].startswith("  ord")


class _FilesOnly(Channel):
    """A channel that renders only files and keeps the default readable hook."""

    name: ClassVar[str] = "files-only"

    def render(self, message: Message) -> Rendered:
        return Rendered(files={"x.bin": "..."})

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        return Receipt("x")


def test_the_default_hook_reads_the_message(app: App) -> None:
    message = make_message(app, "web-borgholm", body="Se [sidan](https://x.se/s).")
    target = app.config.target("web-borgholm")
    assert target is not None
    channel = _FilesOnly(target, app.channel_context())
    text = channel.readable(message, channel.prepare(message))
    assert text.startswith("Vattnet är tillbaka\n===")
    assert "Se sidan (https://x.se/s)." in text
    assert "Borgholms kommun, 0485-880 00" in text
    assert "Kommunchef Jens Odevall, 0485-880 10" in text
    assert channel.readable(message, Rendered(text="Kort SMS")) == "Kort SMS"


def test_the_website_reads_its_own_page(app: App) -> None:
    message = make_message(app, "web-borgholm", title=HOSTILE_TITLE, body=HOSTILE_BODY)
    target = app.config.target("web-borgholm")
    assert target is not None
    channel = app.registry.create(target, app.channel_context())
    text = channel.readable(message, channel.prepare(message))
    # What the visitor reads: the text exactly as typed (shown, never run), real links
    # written out, the refused javascript: link left as the text it was.
    flat = " ".join(text.split())
    assert HOSTILE_TITLE in text
    assert 'Första stycket <script>alert("body")</script> &' in flat
    assert "riktig länk (https://www.borgholm.se/?a=1&b=2)" in flat
    assert "(javascript:" not in flat.replace("[klicka](javascript:alert(1))", "")
    assert "• punkt {% raw %} ett\n• punkt två" in text
    assert "Kontakt: Borgholms kommun" in text and "Publicerad" in text
