"""Masking personal data for output and logs (phone numbers are personal data under GDPR).

:func:`mask_phone` masks one number that is known to be a number (an SMS recipient);
:func:`mask_phone_numbers` finds numbers inside free text, such as a platform's error answer that
quotes the recipient, and masks each where it stands. :class:`PhoneMaskingFilter` does the same
for every log record that passes a handler.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

__all__ = ["PhoneMaskingFilter", "mask_phone", "mask_phone_numbers"]

#: Numbers written without a country code are read as Swedish ones (DESIGN §6).
DEFAULT_REGION = "SE"

# A cheap first look: most texts (and most log lines) hold no run of digits long enough to be a
# phone number, and the full matcher costs about a millisecond per text.
_DIGIT_RUN = re.compile(r"\d[\d\s().\-]{5,}\d")


def mask_phone(number: str) -> str:
    """``+46701234512`` -> ``+46 70 *** ** 12``: enough to tell numbers apart, not to call one.

    Anything that is not an E.164 number is masked whole except its last two characters.
    """
    digits = number[1:]
    if not number.startswith("+") or not digits.isdigit() or len(digits) < 8:
        return "*" * max(0, len(number) - 2) + number[-2:]
    country = 2 if digits.startswith("4") else 1 if digits.startswith("1") else 2
    return f"+{digits[:country]} {digits[country : country + 2]} *** ** {digits[-2:]}"


def mask_phone_numbers(text: str) -> str:
    """``text`` with every phone number in it masked, in the form it was written.

    ``+46 70 123 45 67`` and ``+46701234567`` become ``+46 70 *** ** 67``; the national
    ``070-123 45 67`` becomes ``070 *** ** 67``. Numbers that are valid somewhere are found in
    any form; with a leading ``+`` anything that could be a number is masked, as a platform may
    quote a number that is not in service.
    """
    if not _DIGIT_RUN.search(text):
        return text
    import phonenumbers  # only texts that hold a digit run pay for the import

    spans: dict[tuple[int, int], str] = {}
    for leniency in (phonenumbers.Leniency.VALID, phonenumbers.Leniency.POSSIBLE):
        for match in phonenumbers.PhoneNumberMatcher(text, DEFAULT_REGION, leniency=leniency):
            international = match.raw_string.startswith("+")
            if leniency == phonenumbers.Leniency.POSSIBLE and not international:
                continue  # ids, ports and counts look like possible national numbers
            start = match.start
            if match.raw_string.startswith("(") and ")" not in match.raw_string:
                start += 1  # "(070-123 45 67)": the bracket belongs to the text around it
            spans[(start, match.end)] = _masked(match.number, international)
    for (start, end), masked in sorted(spans.items(), reverse=True):
        text = text[:start] + masked + text[end:]
    return text


def _masked(number: PhoneNumber, international: bool) -> str:
    from phonenumbers import length_of_national_destination_code

    national = str(number.national_number)
    prefix_length = length_of_national_destination_code(number)
    prefix = national[:prefix_length]
    hidden = f"*** ** {national[-2:]}"
    if international:
        return " ".join(part for part in (f"+{number.country_code}", prefix, hidden) if part)
    return f"0{prefix} {hidden}" if prefix else hidden


class PhoneMaskingFilter(logging.Filter):
    """Masks phone numbers in every record a handler emits (message and exception text).

    Attach it to handlers, not loggers: a handler sees the records of every logger below it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        masked = mask_phone_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phone_numbers(record.exc_text)
        return True
