"""Light markdown (paragraphs, links, lists, emphasis) to safe HTML and to plain text.

Raw HTML in announcement text is never passed through: markdown-it runs with ``html`` off, so
``<script>`` comes out as text, and its link validation refuses ``javascript:`` and similar URLs.

In HTML, addresses written out (``https://...``, ``www...``) become links and phone numbers
``tel:`` links that do not wrap (see :mod:`broadcaster.rendering.phones`): people read crisis
pages on phones, and tap rather than copy.
"""

from __future__ import annotations

import re
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

from broadcaster.rendering.phones import find_phone_numbers

__all__ = ["markdown_to_html", "markdown_to_text"]

#: An address written out in the text; trailing punctuation belongs to the sentence.
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\")]"


@cache
def _parser() -> MarkdownIt:
    # "breaks": an officer's single line break (a list of phone numbers) is kept as a line break.
    return MarkdownIt("commonmark", {"html": False, "breaks": True})


@cache
def _html_parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "breaks": True})
    parser.core.ruler.push("tap_links", _tap_links)
    return parser


def markdown_to_html(source: str) -> str:
    """HTML for the light markdown of an announcement body."""
    return str(_html_parser().render(source))


def markdown_to_text(source: str) -> str:
    """Plain text for channels without markup: links as ``text (url)``, lists with bullets."""
    writer = _TextWriter()
    for token in _parser().parse(source):
        writer.feed(token)
    return "\n".join(writer.lines).strip()


class _TextWriter:
    """Walks markdown-it's block tokens, keeping the list nesting it is inside."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        # One entry per open list: (bullet, or None for an ordered list; current number)
        self.lists: list[tuple[str | None, int]] = []

    def feed(self, token: Token) -> None:
        kind = token.type
        if kind == "bullet_list_open":
            self.lists.append(("• ", 0))
        elif kind == "ordered_list_open":
            self.lists.append((None, int(token.attrGet("start") or 1) - 1))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
            if not self.lists:
                self.lines.append("")
        elif kind == "list_item_open":
            bullet, number = self.lists[-1]
            self.lists[-1] = (bullet, number + 1)
        elif kind == "inline":
            self.lines.append(self._indent() + _inline_text(token.children or []))
        elif kind in ("paragraph_close", "heading_close") and not self.lists:
            self.lines.append("")
        elif kind in ("code_block", "fence"):
            self.lines.extend([token.content.rstrip("\n"), ""])

    def _indent(self) -> str:
        if not self.lists:
            return ""
        bullet, number = self.lists[-1]
        return "  " * (len(self.lists) - 1) + (bullet or f"{number}. ")


def _inline_text(children: list[Token]) -> str:
    parts: list[str] = []
    href: str | None = None
    link_start = 0
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "link_open":
            href = str(child.attrGet("href") or "")
            link_start = len(parts)
        elif child.type == "link_close" and href is not None:
            label = "".join(parts[link_start:])
            if href and href not in (label, f"mailto:{label}", f"tel:{label}"):
                parts.append(f" ({href})")
            href = None
    return "".join(parts)


def _tap_links(state: StateCore) -> None:
    """Turn written-out addresses and phone numbers outside links into links."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        depth = 0
        for child in block.children:
            depth += {"link_open": 1, "link_close": -1}.get(child.type, 0)
            if child.type == "text" and depth == 0:
                children.extend(_split_text(state.md, child.content))
            else:
                children.append(child)
        block.children = children


def _split_text(md: MarkdownIt, text: str) -> list[Token]:
    """One text token as text, address links and phone links."""
    spans: list[tuple[int, int, list[Token]]] = []
    for match in _URL.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in _TRAILING:
            if text[end - 1] == ")" and "(" in text[match.start() : end - 1]:
                break
            end -= 1
        address = text[match.start() : end]
        href = md.normalizeLink(address if "://" in address else "https://" + address)
        spans.append((match.start(), end, _link(href, address)))
    for phone in find_phone_numbers(text):
        if not any(start < phone.end and phone.start < stop for start, stop, _ in spans):
            spans.append((phone.start, phone.end, _link(f"tel:{phone.dial}", phone.shown(text))))
    tokens: list[Token] = []
    position = 0
    for start, end, link in sorted(spans, key=lambda span: span[0]):
        tokens.append(_text(text[position:start]))
        tokens.extend(link)
        position = end
    tokens.append(_text(text[position:]))
    return [token for token in tokens if token.type != "text" or token.content]


def _link(href: str, label: str) -> list[Token]:
    opening = Token("link_open", "a", 1, attrs={"href": href})
    if href.startswith("tel:"):
        opening.attrSet("class", "tel")
    return [opening, _text(label), Token("link_close", "a", -1)]


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)
