"""Time: everything stored is UTC; people see Europe/Stockholm (or the workspace's zone).

Times typed by people are read in the workspace's zone, where two nights a year need care:

- In spring the clocks jump forward (in Stockholm from 02:00 to 03:00), so ``02:30`` does not
  exist that night. We refuse it and say which times do, rather than guess.
- In autumn they go back (from 03:00 to 02:00), so ``02:30`` happens twice. We take the first
  (summer time, the earlier moment): a message should rather go out an hour early than late.
  :func:`ambiguity_note` tells the person, and an explicit offset (``2026-10-25T02:30+01:00``)
  names the second.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "Clock",
    "ambiguity_note",
    "format_local",
    "format_short",
    "parse_duration",
    "parse_when",
    "utcnow",
]

Clock = Callable[[], datetime]

_SWEDISH_MONTHS = (
    *("januari", "februari", "mars", "april", "maj", "juni"),
    *("juli", "augusti", "september", "oktober", "november", "december"),
)
_SWEDISH_WEEKDAYS = ("mån", "tis", "ons", "tor", "fre", "lör", "sön")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_FORMS = "now, 18:00, 2026-12-13 08:00, 2026-12-13T08:00+01:00, +30m, +4h or +1d"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def format_local(moment: datetime, timezone: str, language: str = "sv") -> str:
    """A moment as people read it, e.g. ``12 december 2026 kl. 20:15`` (Swedish) in ``timezone``."""
    local = moment.astimezone(ZoneInfo(timezone))
    if language == "sv":
        return f"{local.day} {_SWEDISH_MONTHS[local.month - 1]} {local.year} kl. {local:%H:%M}"
    return local.strftime("%d %B %Y %H:%M")


def format_short(moment: datetime, timezone: str, now: datetime | None = None) -> str:
    """A moment for a table cell, e.g. ``tis 2 dec 18:00``; the year only if not ``now``'s."""
    zone = ZoneInfo(timezone)
    try:
        local = moment.astimezone(zone)
    except OverflowError:  # the last hours of year 9999 have no local time east of UTC
        return f"{moment:%Y-%m-%d %H:%M} UTC"
    day = f"{_SWEDISH_WEEKDAYS[local.weekday()]} {local.day} {_SWEDISH_MONTHS[local.month - 1][:3]}"
    if now is not None and now.astimezone(zone).year != local.year:
        day += f" {local.year}"
    return f"{day} {local:%H:%M}"


def parse_when(text: str, timezone: str, now: datetime) -> datetime:
    """A moment typed at the command line, in UTC.

    Accepts ``now``, ``HH:MM`` (today, in ``timezone``; a time already past stays in the past,
    for the caller to refuse), a local date and time (``2026-12-13 08:00``, or with a ``T``),
    ISO 8601 with an offset (``2026-12-13T08:00+01:00``, ``...Z``), and offsets from ``now``:
    ``+30m`` and ``+4h`` are elapsed time, ``+1d`` is the same clock time a day later (so it
    stays 18:00 across a change of the clocks).

    Raises:
        InputError: Not one of these forms, out of range, or a local time that does not exist
            (the hour skipped when the clocks go forward).
    """
    from broadcaster.errors import InputError

    zone = ZoneInfo(timezone)
    value = text.strip()
    try:
        return _parse(value, zone, now)
    except ValueError:
        raise InputError(f"{text!r} is not a time: use {_FORMS}") from None
    except OverflowError:
        raise InputError(f"{text!r} is outside the calendar; give a time this year") from None


def _parse(value: str, zone: ZoneInfo, now: datetime) -> datetime:
    if value.lower() == "now":
        return now
    if value.startswith("+"):
        return _offset(value, zone, now)
    if len(value) == 5 and value[2] == ":":
        clock = time.fromisoformat(value)
        return _localize(datetime.combine(now.astimezone(zone).date(), clock), zone)
    if len(value) <= 10:  # a date alone: midnight is rarely what anyone means
        raise ValueError(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return _localize(moment, zone)
    return moment.astimezone(UTC)


#: ``30d``: a whole number from 1 and one unit, nothing else (no sign, no space, no fraction).
_DURATION = re.compile(r"([1-9][0-9]{0,4})([hdw])")
_DURATION_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """A length of time typed at the command line: ``12h``, ``30d`` or ``2w``.

    Strict on purpose, as it decides what is deleted: ``30``, ``1.5d``, ``-3d``, ``30 d`` and
    ``30D`` are refused rather than guessed at.

    Raises:
        InputError: Not a whole number of hours, days or weeks (at most 99999).
    """
    from broadcaster.errors import InputError

    match = _DURATION.fullmatch(text)
    if match is None:
        raise InputError(
            f"{text[:40]!r} is not a duration: write a whole number and a unit, "
            "h (hours), d (days) or w (weeks), e.g. 12h, 30d, 2w"
        )
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def ambiguity_note(moment: datetime, timezone: str) -> str | None:
    """When the clock time of ``moment`` occurs twice that night (the clocks went back), say so."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() == local.utcoffset():
        return None
    which = "first" if local.fold == 0 else "second"
    naive = local.replace(tzinfo=None)
    return (
        f"{local:%H:%M} comes twice on {local:%Y-%m-%d} (the clocks go back); this is the "
        f"{which}, {local:%H:%M}{_offset_text(local)}. For the other one, write "
        f"{naive:%Y-%m-%dT%H:%M}{_offset_text(other)}."
    )


def _offset(value: str, zone: ZoneInfo, now: datetime) -> datetime:
    amount, unit = value[1:-1], value[-1:]
    if unit not in _UNITS or not amount.isdigit() or not amount.isascii():
        raise ValueError(value)
    if unit != "d":
        return now + timedelta(**{_UNITS[unit]: int(amount)})
    local = now.astimezone(zone).replace(tzinfo=None)
    return _localize(local + timedelta(days=int(amount)), zone)


def _localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """A local clock time in ``zone`` as UTC; refuses the times skipped when clocks go forward."""
    from broadcaster.errors import InputError

    first = naive.replace(tzinfo=zone, fold=0)
    moment = first.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != naive:
        # zoneinfo reads a skipped time with the offset before the jump; going round the clock
        # once lands on a different clock time, which is how a gap shows itself.
        jump = naive.replace(tzinfo=zone, fold=1).utcoffset() or timedelta()
        before = first.utcoffset() or timedelta()
        later = naive + abs(jump - before)
        raise InputError(
            f"{naive:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks are put forward "
            f"that night; give a time outside the skipped hour, e.g. {later:%Y-%m-%d %H:%M}"
        )
    return moment


def _offset_text(local: datetime) -> str:
    offset = local.utcoffset() or timedelta()
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
