"""Reading Telegram's HTML the way the Bot API does: the visible text, its length, its mistakes.

Telegram measures its 4,096-character limit on the text *after* parsing the markup (tags gone,
``&amp;`` one character), in UTF-16 code units, and refuses the whole message when the markup
uses a tag or named entity it does not know, or leaves a tag open. ``preview`` must find all of
that before anything is sent, so the rendered message is read here with the same rules
(https://core.telegram.org/bots/api#html-style).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["TelegramText", "read_html", "utf16_length"]

#: Tags the Bot API accepts in HTML parse mode.
_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
        "code", "pre", "blockquote", "tg-emoji",
    }
)  # fmt: skip
#: The only named entities it accepts (every numeric one works).
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts in (an emoji is often two)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class TelegramText:
    """What a reader of the message sees, and what Telegram would refuse in the markup."""

    visible: str
    #: ``(label, href)`` of each link, in order.
    links: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def length(self) -> int:
        """The length Telegram measures against its limit."""
        return utf16_length(self.visible)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self.open: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self._link: tuple[int, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self.problems.append(f"Telegram does not know the tag <{tag}>")
            return
        self.open.append(tag)
        if tag == "a":
            self._link = (len(self.parts), dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag not in _TAGS:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes a tag that is not open")
            return
        self.open.pop()
        if tag == "a" and self._link is not None:
            start, href = self._link
            self.links.append(("".join(self.parts[start:]), href))
            self._link = None

    def handle_data(self, data: str) -> None:
        if "<" in data:
            self.problems.append("a bare '<' must be written &lt;")
        if "&" in data:
            self.problems.append("a bare '&' must be written &amp;")
        self.parts.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _NAMED:
            self.problems.append(f"Telegram does not know the entity &{name};")
            return
        self.parts.append(_NAMED[name])

    def handle_charref(self, name: str) -> None:
        try:
            code = int(name[1:], 16) if name[:1] in "xX" else int(name)
            self.parts.append(chr(code))
        except (ValueError, OverflowError):
            self.problems.append(f"&#{name}; is not a character")


def read_html(markup: str) -> TelegramText:
    """The visible text of ``markup`` (trimmed, as Telegram trims it) and its problems."""
    reader = _Reader()
    reader.feed(markup)
    reader.close()
    problems = list(dict.fromkeys(reader.problems))
    problems += [f"<{tag}> is never closed" for tag in reader.open]
    return TelegramText("".join(reader.parts).strip(), reader.links, problems)
