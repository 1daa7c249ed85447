"""Light markdown (paragraphs, links, lists, emphasis) to safe HTML and to plain text.

Raw HTML in announcement text is never passed through: markdown-it runs with ``html`` off, so
``<script>`` comes out as text, and its link validation refuses ``javascript:`` and similar URLs.
"""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["markdown_to_html", "markdown_to_text"]


@cache
def _parser() -> MarkdownIt:
    # "breaks": an officer's single line break (a list of phone numbers) is kept as a line break.
    return MarkdownIt("commonmark", {"html": False, "breaks": True})


def markdown_to_html(source: str) -> str:
    """HTML for the light markdown of an announcement body."""
    return str(_parser().render(source))


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
