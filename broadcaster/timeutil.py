"""Time: everything stored is UTC; people see Europe/Stockholm (or the workspace's zone)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Clock", "format_local", "parse_when", "utcnow"]

Clock = Callable[[], datetime]

_SWEDISH_MONTHS = (
    *("januari", "februari", "mars", "april", "maj", "juni"),
    *("juli", "augusti", "september", "oktober", "november", "december"),
)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def format_local(moment: datetime, timezone: str, language: str = "sv") -> str:
    """A moment as people read it, e.g. ``12 december 2026 kl. 20:15`` (Swedish) in ``timezone``."""
    local = moment.astimezone(ZoneInfo(timezone))
    if language == "sv":
        return f"{local.day} {_SWEDISH_MONTHS[local.month - 1]} {local.year} kl. {local:%H:%M}"
    return local.strftime("%d %B %Y %H:%M")


def parse_when(text: str, timezone: str, now: datetime) -> datetime:
    """A moment from the command line, in UTC.

    Accepts ISO 8601 (``2026-12-13T08:00``; without an offset it is local time), ``HH:MM`` (the
    next time the clock shows it) and offsets from now (``+30m``, ``+4h``, ``+1d``).
    """
    from broadcaster.errors import InputError

    zone = ZoneInfo(timezone)
    value = text.strip()
    try:
        if value.startswith("+") and value[-1:] in _UNITS and value[1:-1].isdigit():
            return now + timedelta(**{_UNITS[value[-1]]: int(value[1:-1])})
        if len(value) == 5 and value[2] == ":":
            clock = time.fromisoformat(value)
            local_now = now.astimezone(zone)
            moment = datetime.combine(local_now.date(), clock, tzinfo=zone)
            if moment <= local_now:
                moment += timedelta(days=1)
            return moment.astimezone(UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{text!r} is not a time: use 2026-12-13T08:00, 08:00, +30m, +4h or +1d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
