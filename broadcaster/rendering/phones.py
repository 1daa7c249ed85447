"""Phone numbers in text, for pages read on a phone: found, made ``tel:`` links, never broken.

A number such as ``0485-880 00`` wrapped after ``0485-880`` is misread or mistyped by the person
who needs it most; on a phone it should also be one tap away. So in HTML each number becomes
``<a class="tel" href="tel:+4648588000">0485-880&nbsp;00</a>``: non-breaking spaces inside it, and
the page's CSS keeps the link on one line (the hyphen too). Plain-text channels are left alone:
a non-breaking space is not in the GSM alphabet and would triple an SMS's cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = [
    "NBSP",
    "PhoneMatch",
    "find_phone_numbers",
    "link_phone_numbers",
    "phone_link",
    "tel_uri",
]

NBSP = "\u00a0"
DEFAULT_REGION = "SE"

#: National short numbers a crisis page is likely to give (phonenumbers' matcher skips them):
#: 112 emergency, 113 13 information in serious events, 114 14 police, 1177 health care advice.
_SHORT_NUMBERS = re.compile(r"(?<![\w+-])(112|113 13|114 14|1177)(?![\w-]|[ \u00a0]\d)")


@dataclass(frozen=True)
class PhoneMatch:
    """One phone number found in a text: where it is, and the number to dial."""

    start: int
    end: int
    dial: str  # E.164 (+4648588000), or the short number's digits

    def shown(self, text: str) -> str:
        """The number as written, with non-breaking spaces."""
        return text[self.start : self.end].replace(" ", NBSP)


def find_phone_numbers(text: str) -> list[PhoneMatch]:
    """Every valid phone number in ``text`` (Swedish unless written with a country code)."""
    found = list(_full_numbers(text))
    taken = [(m.start, m.end) for m in found]
    for short in _SHORT_NUMBERS.finditer(text):
        if not any(start < short.end() and short.start() < end for start, end in taken):
            found.append(PhoneMatch(short.start(), short.end(), short.group().replace(" ", "")))
    return sorted(found, key=lambda m: m.start)


def link_phone_numbers(text: str) -> Markup:
    """``text`` escaped for HTML, with every phone number a ``tel:`` link that does not wrap."""
    parts: list[str] = []
    position = 0
    for match in find_phone_numbers(text):
        parts.append(escape(text[position : match.start]))
        parts.append(phone_link(match.dial, match.shown(text)))
        position = match.end
    parts.append(escape(text[position:]))
    return Markup("".join(parts))  # noqa: S704 - every piece above is escaped


def phone_link(dial: str, shown: str) -> Markup:
    """``<a class="tel" href="tel:...">shown</a>``."""
    return Markup('<a class="tel" href="tel:{}">{}</a>').format(dial, shown.replace(" ", NBSP))


def tel_uri(number: str) -> str:
    """A ``tel:`` URI for a number such as ``0485-880 00`` (E.164 when it can be parsed)."""
    import phonenumbers  # only pages that print phone links pay for the import

    try:
        parsed = phonenumbers.parse(number, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return "tel:" + "".join(ch for ch in number if ch.isdigit() or ch == "+")
    return "tel:" + phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _full_numbers(text: str) -> Iterator[PhoneMatch]:
    import phonenumbers

    for match in phonenumbers.PhoneNumberMatcher(
        text, DEFAULT_REGION, leniency=phonenumbers.Leniency.VALID
    ):
        dial = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        start, end = match.start, match.end
        # "(+46 70 ...)" - the matcher keeps an opening bracket that belongs to the sentence
        if text[start] == "(" and ")" not in text[start:end]:
            start += 1
        yield PhoneMatch(start, end, dial)
