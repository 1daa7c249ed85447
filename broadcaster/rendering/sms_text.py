"""SMS text: GSM 03.38 or UCS-2, characters, segments and cost, computed exactly.

An SMS carries 140 bytes. In the GSM 03.38 default alphabet (7-bit) that is 160 characters, or 153
per part once a text is split, because each part spends 7 on the concatenation header. The
extension table (``^ { } \\ [ ~ ] | €`` and form feed) costs two septets, an escape and the
character, and a phone never lets the pair straddle two parts. A single character outside the
alphabet switches the whole message to UCS-2: 70 UTF-16 code units, 67 per part, and a character
outside the Basic Multilingual Plane (most emoji) is a surrogate pair that also stays in one part.

Swedish is covered by the alphabet (å ä ö Å Ä Ö é É ü Ü are in it); what usually pushes a Swedish
text into UCS-2, at three times the price, is typography: curly quotes, en dashes, the ellipsis and
non-breaking spaces that word processors insert. :func:`analyse` replaces those with their plain
equivalents (on by default) when that keeps the message GSM-7, and says which characters still
force UCS-2 otherwise, so the officer knows exactly what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "GSM_BASIC",
    "GSM_EXTENSION",
    "Encoding",
    "SmsText",
    "analyse",
    "segment_problem",
    "sms_cost",
    "split_parts",
]

#: The GSM 03.38 default alphabet, in table order (0x1B, the escape, is left out).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: each costs two septets (escape + character).
GSM_EXTENSION = frozenset("\f^{}\\[]~|€")

#: Typography with a plain GSM equivalent. Zero-width joiners are left alone: they hold emoji
#: sequences together, and a text with emoji is UCS-2 anyway.
_REPLACEMENTS: dict[str, str] = {
    **dict.fromkeys("‘’‚‛′", "'"),
    **dict.fromkeys("“”„‟«»″", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    "…": "...",
    # Non-breaking, thin, figure, ideographic and other odd spaces, and the tab.
    **dict.fromkeys("\t\u00a0\u1680\u202f\u205f\u3000", " "),
    **dict.fromkeys("".join(chr(c) for c in range(0x2000, 0x200B)), " "),
    # Invisible characters that would otherwise force UCS-2 without showing anything.
    **dict.fromkeys("\u00ad\u200b\u2060\ufeff", ""),
}


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


#: (single-message limit, per-part limit when concatenated), in septets or UTF-16 code units.
_LIMITS = {Encoding.GSM7: (160, 153), Encoding.UCS2: (70, 67)}


@dataclass(frozen=True, kw_only=True)
class SmsText:
    """What one SMS text costs; ``text`` is what is sent (after any replacements)."""

    text: str
    encoding: Encoding
    #: Characters as a reader counts them (code points).
    characters: int
    #: Septets (GSM-7) or UTF-16 code units (UCS-2): what the limits count.
    units: int
    segments: int
    #: The limit of each segment: 160/70 for a single SMS, 153/67 per part when split.
    per_segment: int
    #: The characters that were replaced with plain equivalents, in order of first appearance.
    replaced: tuple[str, ...] = ()
    #: The characters that force UCS-2, in order of first appearance (empty for GSM-7).
    forced_ucs2: tuple[str, ...] = ()


def _unit_cost(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if char in GSM_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def _outside_gsm(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in text if c not in GSM_BASIC and c not in GSM_EXTENSION))


def _replace(text: str) -> str:
    return "".join(_REPLACEMENTS.get(c, c) for c in text)


def split_parts(text: str, encoding: Encoding) -> list[str]:
    """The parts a phone reassembles, never splitting an escape or a surrogate pair.

    A text within the single-message limit is one part (an empty text too: it is still one SMS).
    """
    single, per_part = _LIMITS[encoding]
    if sum(_unit_cost(c, encoding) for c in text) <= single:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        cost = _unit_cost(char, encoding)
        if used + cost > per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += cost
    parts.append("".join(current))
    return parts


def analyse(text: str, *, replace: bool = True) -> SmsText:
    """Encoding, characters, units and segments of ``text`` as it would be sent.

    With ``replace`` (the default) typographic quotes, dashes, the ellipsis and odd spaces become
    their plain equivalents, but only when that makes the text GSM-7: a text that needs UCS-2 for
    another character gains nothing and is sent as written.
    """
    sent = text
    replaced: tuple[str, ...] = ()
    if replace:
        plain = _replace(text)
        if not _outside_gsm(plain):
            replaced = tuple(dict.fromkeys(c for c in text if c in _REPLACEMENTS))
            sent = plain
    forced = _outside_gsm(sent)
    encoding = Encoding.UCS2 if forced else Encoding.GSM7
    parts = split_parts(sent, encoding)
    single, per_part = _LIMITS[encoding]
    return SmsText(
        text=sent,
        encoding=encoding,
        characters=len(sent),
        units=sum(_unit_cost(c, encoding) for c in sent),
        segments=len(parts),
        per_segment=single if len(parts) == 1 else per_part,
        replaced=replaced,
        forced_ucs2=forced,
    )


def segment_problem(sms: SmsText, max_segments: int, target: str = "") -> str | None:
    """The sentence that refuses ``sms`` when it needs more than ``max_segments``, else None."""
    if sms.segments <= max_segments:
        return None
    where = f" for {target}" if target else ""
    problem = (
        f"the SMS text needs {sms.segments} segments ({sms.characters} characters, "
        f"{sms.encoding}), more than max_segments = {max_segments}{where}; shorten it "
        "(an SMS override in the announcement helps) or raise max_segments in the configuration"
    )
    if sms.forced_ucs2:
        shown = " ".join(_describe(c) for c in sms.forced_ucs2[:5])
        more = " ..." if len(sms.forced_ucs2) > 5 else ""
        problem += (
            f"; these characters force UCS-2 (70 characters per SMS instead of 160): {shown}{more}"
        )
    return problem


def _describe(char: str) -> str:
    """A character the reader can find: itself, or its code point when it is invisible."""
    return repr(char) if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"


def sms_cost(segments: int, recipients: int, price_per_segment: Decimal | None) -> Decimal | None:
    """What sending costs: segments x recipients x price, or None when no price is configured."""
    if price_per_segment is None:
        return None
    return segments * recipients * price_per_segment
