"""Log lines of long-running processes (the worker): in the workspace's time zone, or JSON.

People read ``2026-12-02 21:40:05+01:00 INFO broadcaster.worker ...`` in the zone they work in,
with the offset so the line is unambiguous on the night the clocks change; machines read one JSON
object per line (``--json-logs``). Either way phone numbers are masked before a line is written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from broadcaster.privacy import PhoneMaskingFilter

__all__ = ["JsonLineFormatter", "ZonedFormatter", "log_to"]

# What every LogRecord has; anything else on a record came from ``extra=`` and is worth showing.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class ZonedFormatter(logging.Formatter):
    """``2026-12-02 21:40:05+01:00 INFO broadcaster.worker message``.

    A record's extras are for machines (:class:`JsonLineFormatter`); people get the message,
    which says the same in words.
    """

    def __init__(self, timezone: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.zone = ZoneInfo(timezone)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time in the workspace's zone, with its offset."""
        moment = datetime.fromtimestamp(record.created, self.zone)
        return moment.isoformat(sep=" ", timespec="seconds")


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's extras."""

    def __init__(self, timezone: str) -> None:
        super().__init__()
        self.zone = ZoneInfo(timezone)

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, self.zone).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(_extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = record.exc_text
        return json.dumps(document, ensure_ascii=False, default=str)


@contextmanager
def log_to(
    stream: IO[str], timezone: str, *, json_lines: bool = False, level: int = logging.INFO
) -> Iterator[logging.Handler]:
    """Send broadcaster's log records to ``stream`` while the block runs, then stop.

    The handler hangs on the ``broadcaster`` logger and goes away afterwards, so a process (or a
    test) that runs a worker twice never writes each line twice.
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter(timezone) if json_lines else ZonedFormatter(timezone))
    handler.addFilter(PhoneMaskingFilter())
    logger = logging.getLogger("broadcaster")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }
