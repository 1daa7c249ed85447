"""Masking personal data for output and logs (phone numbers are personal data under GDPR)."""

from __future__ import annotations

__all__ = ["mask_phone"]


def mask_phone(number: str) -> str:
    """``+46701234512`` -> ``+46 70 *** ** 12``: enough to tell numbers apart, not to call one.

    Anything that is not an E.164 number is masked whole except its last two characters.
    """
    digits = number[1:]
    if not number.startswith("+") or not digits.isdigit() or len(digits) < 8:
        return "*" * max(0, len(number) - 2) + number[-2:]
    country = 2 if digits.startswith("4") else 1 if digits.startswith("1") else 2
    return f"+{digits[:country]} {digits[country : country + 2]} *** ** {digits[-2:]}"
