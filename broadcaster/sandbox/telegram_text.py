"""Telegram's entity parsing of message text (``parse_mode`` HTML, MarkdownV2, Markdown).

The Bot API refuses text it cannot parse with ``Bad Request: can't parse entities: ...`` and
measures the 4096-character limit on the text *after* parsing. This module does the same, close
enough to catch what goes wrong in practice: unescaped MarkdownV2 reserved characters, unknown or
unclosed HTML tags, bare ``<`` and ``&``. It returns the plain text and its entities (offsets in
UTF-16 code units, as Telegram counts them).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

__all__ = ["EntityError", "parse_text", "utf16_length"]

_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre",
    "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}  # fmt: skip
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_BARE_LT = re.compile(r"<(?!/?[A-Za-z][A-Za-z0-9-]*[\s/>])")
_BARE_AMP = re.compile(r"&(?!#\d+;|#x[0-9A-Fa-f]+;|[A-Za-z]+;)")
_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_MARKS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}
_MD_MARKS = {"*": "bold", "_": "italic"}


class EntityError(ValueError):
    """The text cannot be parsed; the message is Telegram's (after ``can't parse entities:``)."""


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, Telegram's unit for lengths and offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


class _Html(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = source
        self.plain: list[str] = []
        self.entities: list[dict[str, Any]] = []
        self.open: list[tuple[str, int, dict[str, str]]] = []

    def _offset(self) -> int:
        return utf16_length("".join(self.plain))

    def _position(self) -> int:
        line, column = self.getpos()
        lines = self.source.split("\n")
        return _byte_offset(self.source, sum(len(x) + 1 for x in lines[: line - 1]) + column)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag not in _HTML_TAGS or (tag == "span" and values.get("class") != "tg-spoiler"):
            raise EntityError(f'Unsupported start tag "{tag}" at byte offset {self._position()}')
        if tag == "a" and not values.get("href"):
            raise EntityError(f"Can't find href of the link at byte offset {self._position()}")
        self.open.append((tag, self._offset(), values))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise EntityError(
                f'Unmatched end tag at byte offset {self._position()}, expected "'
                f'</{self.open[-1][0] if self.open else ""}>", found "</{tag}>"'
            )
        name, start, values = self.open.pop()
        entity: dict[str, Any] = {
            "type": _HTML_TAGS[name],
            "offset": start,
            "length": self._offset() - start,
        }
        if name == "a":
            entity["url"] = values["href"]
        if entity["length"]:
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.plain.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _NAMED_ENTITIES:
            raise EntityError(
                f'Unsupported HTML entity "&{name};" at byte offset {self._position()}'
            )
        self.plain.append(_NAMED_ENTITIES[name])

    def handle_charref(self, name: str) -> None:
        self.plain.append(chr(int(name[1:], 16) if name[:1] in "xX" else int(name)))


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    for pattern, what in ((_BARE_LT, '"<"'), (_BARE_AMP, '"&"')):
        found = pattern.search(text)
        if found:
            offset = _byte_offset(text, found.start())
            raise EntityError(f"Unexpected {what} at byte offset {offset}; escape it")
    parser = _Html(text)
    parser.feed(text)
    parser.close()
    if parser.open:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{parser.open[-1][0]}"')
    return "".join(parser.plain), parser.entities


class _Markdown:
    """MarkdownV2 (``strict``) or legacy Markdown, both as Telegram documents them."""

    def __init__(self, text: str, strict: bool) -> None:
        self.text, self.strict = text, strict
        self.plain: list[str] = []
        self.entities: list[dict[str, Any]] = []
        self.open: dict[str, tuple[int, int]] = {}
        self.i = 0

    def fail(self, message: str) -> EntityError:
        return EntityError(f"{message} at byte offset {_byte_offset(self.text, self.i)}")

    def offset(self) -> int:
        return utf16_length("".join(self.plain))

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        while self.i < len(self.text):
            self.step()
        if self.open:
            mark, (_, start) = next(iter(self.open.items()))
            self.i = start
            kind = (_MDV2_MARKS if self.strict else _MD_MARKS)[mark]
            raise self.fail(f"Can't find end of {kind.capitalize()} entity")
        return "".join(self.plain), self.entities

    def step(self) -> None:
        char = self.text[self.i]
        marks = _MDV2_MARKS if self.strict else _MD_MARKS
        double = self.text[self.i : self.i + 2]
        if self.strict and char == "\\" and self.i + 1 < len(self.text):
            self.plain.append(self.text[self.i + 1])
            self.i += 2
        elif char == "`":
            self.code()
        elif char == "[":
            self.link()
        elif self.strict and double in marks:
            self.toggle(double)
        elif char in marks:
            self.toggle(char)
        elif self.strict and char == ">" and (self.i == 0 or self.text[self.i - 1] == "\n"):
            self.i += 1
        elif self.strict and char in _MDV2_RESERVED:
            raise self.fail(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            self.plain.append(char)
            self.i += 1

    def toggle(self, mark: str) -> None:
        if mark in self.open:
            start, _ = self.open.pop(mark)
            kind = (_MDV2_MARKS if self.strict else _MD_MARKS)[mark]
            self.entities.append({"type": kind, "offset": start, "length": self.offset() - start})
        else:
            self.open[mark] = (self.offset(), self.i)
        self.i += len(mark)

    def code(self) -> None:
        fence = "```" if self.text.startswith("```", self.i) else "`"
        end = self.closing(fence, self.i + len(fence))
        if end < 0:
            raise self.fail("Can't find end of the entity starting")
        content = self.text[self.i + len(fence) : end]
        entity: dict[str, Any] = {"type": "pre" if fence == "```" else "code"}
        language, newline, rest = content.partition("\n")
        if fence == "```" and newline and language and not re.search(r"\s", language):
            entity["language"], content = language, rest  # ```python<newline>...```
        if self.strict:
            content = re.sub(r"\\([`\\])", r"\1", content)
        entity |= {"offset": self.offset(), "length": utf16_length(content)}
        self.plain.append(content)
        self.entities.append(entity)
        self.i = end + len(fence)

    def closing(self, fence: str, start: int) -> int:
        """Index of the fence that ends a code entity (MarkdownV2: not an escaped backtick)."""
        while (end := self.text.find(fence, start)) >= 0 and self.strict:
            before = self.text[:end]
            if (len(before) - len(before.rstrip("\\"))) % 2 == 0:
                break
            start = end + 1
        return end

    def link(self) -> None:
        match = re.compile(r"\[((?:\\.|[^\]\\])*)\]\(((?:\\.|[^)\\])*)\)").match(self.text, self.i)
        if match is None:
            if self.strict:
                raise self.fail(
                    "Character '[' is reserved and must be escaped with the preceding '\\'"
                )
            self.plain.append("[")
            self.i += 1
            return
        label = re.sub(r"\\(.)", r"\1", match.group(1)) if self.strict else match.group(1)
        start = self.offset()
        self.plain.append(label)
        url = re.sub(r"\\([)\\])", r"\1", match.group(2))
        self.entities.append(
            {"type": "text_link", "offset": start, "length": utf16_length(label), "url": url}
        )
        self.i = match.end()


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Parse ``text`` as Telegram does for ``parse_mode``.

    Returns:
        The plain text and its entities.

    Raises:
        EntityError: The text does not parse (Telegram answers 400 ``can't parse entities``).
        ValueError: ``parse_mode`` is not one Telegram knows.
    """
    mode = (parse_mode or "").lower()
    if mode == "":
        return text, []
    if mode == "html":
        return _parse_html(text)
    if mode in ("markdownv2", "markdown"):
        return _Markdown(text, strict=mode == "markdownv2").run()
    raise ValueError(parse_mode)
