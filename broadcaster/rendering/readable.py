"""Plain text as a reader sees it: what ``preview`` shows an approver instead of file names.

:func:`html_to_text` reads a rendered page the way a person does: headings and paragraphs as
blocks, lists with bullets, every link's address written out after its text (an approver must
see where a link goes, not only what it says), wrapped to a readable width. Addresses are never
broken across lines, so they can be copied. :func:`message_text` is the fallback for a channel
that has no text of its own: title, time line, body, link and the organisation's contact lines.
"""

from __future__ import annotations

import textwrap
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from broadcaster.rendering.markup import markdown_to_text
from broadcaster.rendering.message import Message
from broadcaster.timeutil import format_local

__all__ = ["WIDTH", "html_to_text", "message_text", "wrap_text"]

#: Columns of readable text: fits an 80-column terminal with room for an indent.
WIDTH = 72

_BLOCKS = frozenset(
    {
        *("p", "div", "article", "section", "header", "footer", "main", "nav", "aside"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "tr", "figure"),
        *("ul", "ol", "li", "dl", "dt", "dd", "form", "hr", "address", "figcaption"),
    }
)
#: Elements whose content a reader never sees.
_INVISIBLE = frozenset({"head", "style", "script", "template", "noscript", "svg"})
_UNDERLINE = {"h1": "=", "h2": "-"}
#: Marks where a list ends, so two lists in a row are two paragraphs.
_LIST_END = "/list"
#: Link schemes whose address is worth writing out (``tel:`` repeats the number it shows).
_SHOWN_SCHEMES = ("http", "https", "mailto")


def wrap_text(text: str, width: int = WIDTH) -> str:
    """Wrap each line of ``text`` to ``width``; list items keep a hanging indent."""
    wrapped = []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        indent = " " * (len(line) - len(stripped))
        hanging = indent + ("  " if stripped.startswith("• ") else "")
        if stripped[:1].isdigit() and ". " in stripped[:5]:
            hanging = indent + " " * (stripped.index(". ") + 2)
        wrapped.append(_fill(stripped, width, indent, hanging) if stripped else "")
    return "\n".join(wrapped)


def html_to_text(html: str, *, base_url: str | None = None, width: int = WIDTH) -> str:
    """The visible text of an HTML page, wrapped, with link addresses written out.

    Args:
        html: The page.
        base_url: Where the page will be served; relative links are written out as absolute
            addresses against it. Without it they are left out (``../index.html`` tells a
            reader nothing).
        width: Columns to wrap to.
    """
    reader = _PageReader(base_url, width)
    reader.feed(html)
    reader.close()
    return reader.text()


def message_text(message: Message, timezone: str, width: int = WIDTH) -> str:
    """A channel-neutral reading of ``message``: for adapters without text of their own."""
    content = message.content
    organisation = message.organisation
    lines = [content.title, "=" * min(len(content.title), width), ""]
    lines += [format_local(message.updated_at, timezone, content.language), ""]
    lines += [markdown_to_text(content.body), ""]
    if content.link:
        lines += [content.link, ""]
    lines.append(f"{organisation.name}, {organisation.phone}")
    lines += organisation.contacts
    lines.append(organisation.website)
    return wrap_text("\n".join(lines), width).strip() + "\n"


def _fill(text: str, width: int, indent: str, hanging: str) -> str:
    return textwrap.fill(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=hanging,
        break_long_words=False,  # an address must stay whole to be copied
        break_on_hyphens=False,
    )


class _Block:
    """One paragraph-like piece of the page being collected."""

    def __init__(self, tag: str, prefix: str = "", indent: str = "") -> None:
        self.tag = tag
        self.prefix = prefix
        self.indent = indent
        self.parts: list[str] = []

    def is_empty(self) -> bool:
        return not "".join(self.parts).strip()

    def render(self, width: int) -> list[str]:
        text = "".join(self.parts)
        if self.tag == "pre":
            # Preformatted text keeps its lines and spaces, unwrapped.
            return [self.indent + line for line in text.strip("\n").split("\n")]
        lines = [" ".join(line.split()) for line in text.split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            return []
        out = []
        for number, line in enumerate(lines):
            first = self.indent + (self.prefix if number == 0 else " " * len(self.prefix))
            hanging = self.indent + " " * len(self.prefix)
            out.append(_fill(line, width, first, hanging))
        underline = _UNDERLINE.get(self.tag)
        if underline and len(lines) == 1:
            out.append(underline * min(len(lines[0]), width))
        return out


class _PageReader(HTMLParser):
    """Collects blocks of visible text; see :func:`html_to_text`."""

    def __init__(self, base_url: str | None, width: int) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.width = width
        self.blocks: list[tuple[str, list[str]]] = []
        self.current = _Block("")
        self.hidden_depth = 0
        self.hidden_tags: list[str] = []
        # One entry per open list: its tag and the number of items seen so far.
        self.lists: list[tuple[str, int]] = []
        # Open links: (address to write out or "", where the link's text starts).
        self.links: list[tuple[str, int]] = []
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if self.hidden_depth or tag in _INVISIBLE or "hidden" in values or _in_page(tag, values):
            if tag not in _VOID:
                self.hidden_depth += 1
                self.hidden_tags.append(tag)
            return
        if tag == "br":
            self.current.parts.append("\n")
        elif tag in _BLOCKS:
            self._open_block(tag, values)
        elif tag == "a":
            self.links.append((self._address(values.get("href")), len(self.current.parts)))
        elif tag == "img" and values.get("alt"):
            self.current.parts.append(f"[{values['alt']}]")

    def handle_endtag(self, tag: str) -> None:
        if self.hidden_depth:
            if self.hidden_tags and self.hidden_tags[-1] == tag:
                self.hidden_tags.pop()
                self.hidden_depth -= 1
            return
        if tag == "a" and self.links:
            address, start = self.links.pop()
            label = "".join(self.current.parts[start:]).strip()
            if address and address not in (label, f"mailto:{label}"):
                self.current.parts.append(f" ({address})")
        elif tag in _BLOCKS:
            self._flush()
            if tag in ("ul", "ol") and self.lists:
                self.lists.pop()
                if not self.lists:
                    self.blocks.append((_LIST_END, []))
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.hidden_depth:
            return
        if self.pre:
            # Preformatted text keeps its lines (each becomes a line of the block).
            self.current.parts.append(data)
        else:
            self.current.parts.append(" ".join(data.split("\n")))

    def text(self) -> str:
        self._flush()
        out: list[str] = []
        previous = ""
        for tag, lines in self.blocks:
            if tag == _LIST_END:
                previous = tag
                continue
            if out and not (tag == "li" and previous == "li"):
                out.append("")
            out.extend(lines)
            previous = tag
        return "\n".join(out).strip() + "\n"

    def _open_block(self, tag: str, values: dict[str, str | None]) -> None:
        # A paragraph inside a list item continues that item (loose lists wrap items in <p>).
        if tag == "p" and self.current.tag == "li" and self.current.is_empty():
            return
        self._flush()
        if tag in ("ul", "ol"):
            start = int(values.get("start") or 1) - 1 if tag == "ol" else 0
            self.lists.append((tag, start))
            return
        if tag == "pre":
            self.pre += 1
        prefix = ""
        indent = "  " * max(0, len(self.lists) - 1)
        if tag == "li" and self.lists:
            kind, count = self.lists[-1]
            self.lists[-1] = (kind, count + 1)
            prefix = "• " if kind == "ul" else f"{count + 1}. "
        elif self.lists:
            indent = "  " * len(self.lists)
        self.current = _Block(tag, prefix, indent)

    def _flush(self) -> None:
        block = self.current
        lines = block.render(self.width)
        if lines:
            self.blocks.append((block.tag, lines))
        # Text after a closed block and before the next one is a block of its own.
        self.current = _Block("", indent="  " * len(self.lists))

    def _address(self, href: str | None) -> str:
        if not href:
            return ""
        if self.base_url:
            href = urljoin(self.base_url, href)
        if urlsplit(href).scheme not in _SHOWN_SCHEMES:
            return ""
        return href


_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "source", "wbr", "col", "area"})


def _in_page(tag: str, values: dict[str, str | None]) -> bool:
    """A link to a place on the same page (a "skip to content" link) is navigation, not text."""
    return tag == "a" and (values.get("href") or "").startswith("#")
