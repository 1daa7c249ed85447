"""Times typed at the command line and shown to people."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broadcaster.errors import InputError
from broadcaster.timeutil import format_local, parse_when

NOW = datetime(2026, 12, 12, 19, 30, tzinfo=UTC)  # 20:30 in Stockholm
ZONE = "Europe/Stockholm"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+30m", datetime(2026, 12, 12, 20, 0, tzinfo=UTC)),
        ("+4h", datetime(2026, 12, 12, 23, 30, tzinfo=UTC)),
        ("+1d", datetime(2026, 12, 13, 19, 30, tzinfo=UTC)),
        ("21:00", datetime(2026, 12, 12, 20, 0, tzinfo=UTC)),
        ("08:00", datetime(2026, 12, 13, 7, 0, tzinfo=UTC)),  # already past today: tomorrow
        ("2026-12-13T08:00", datetime(2026, 12, 13, 7, 0, tzinfo=UTC)),
        ("2026-06-13T08:00", datetime(2026, 6, 13, 6, 0, tzinfo=UTC)),  # summer time
        ("2026-12-13T08:00+00:00", datetime(2026, 12, 13, 8, 0, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, ZONE, NOW) == expected


@pytest.mark.parametrize("text", ["tomorrow", "+5x", "25:00", "+", ""])
def test_parse_when_refuses_nonsense(text: str) -> None:
    with pytest.raises(InputError, match="is not a time"):
        parse_when(text, ZONE, NOW)


def test_format_local_in_swedish() -> None:
    assert format_local(NOW, ZONE) == "12 december 2026 kl. 20:30"
    assert format_local(datetime(2026, 7, 1, 6, 5, tzinfo=UTC), ZONE) == "1 juli 2026 kl. 08:05"
