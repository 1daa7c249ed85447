"""Times typed at the command line and shown to people."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broadcaster.errors import InputError
from broadcaster.timeutil import ambiguity_note, format_local, format_short, parse_when

NOW = datetime(2026, 12, 12, 19, 30, tzinfo=UTC)  # 20:30 in Stockholm
ZONE = "Europe/Stockholm"
# The nights the clocks change in Stockholm in 2026: forward at 02:00 on 29 March (CET ->
# CEST, 02:00-03:00 never happens), back at 03:00 on 25 October (02:00-03:00 happens twice).
SPRING_EVE = datetime(2026, 3, 28, 17, 0, tzinfo=UTC)  # 18:00 CET on the Saturday
AUTUMN_EVE = datetime(2026, 10, 24, 16, 0, tzinfo=UTC)  # 18:00 CEST on the Saturday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("+0m", NOW),
        ("+30m", datetime(2026, 12, 12, 20, 0, tzinfo=UTC)),
        ("+4h", datetime(2026, 12, 12, 23, 30, tzinfo=UTC)),
        ("+1d", datetime(2026, 12, 13, 19, 30, tzinfo=UTC)),
        ("21:00", datetime(2026, 12, 12, 20, 0, tzinfo=UTC)),
        # Already past today: stays today (in the past), for `send` to refuse; never tomorrow.
        ("08:00", datetime(2026, 12, 12, 7, 0, tzinfo=UTC)),
        ("2026-12-13T08:00", datetime(2026, 12, 13, 7, 0, tzinfo=UTC)),
        ("2026-12-13 08:00", datetime(2026, 12, 13, 7, 0, tzinfo=UTC)),
        ("2026-06-13T08:00", datetime(2026, 6, 13, 6, 0, tzinfo=UTC)),  # summer time
        ("2026-12-13T08:00+00:00", datetime(2026, 12, 13, 8, 0, tzinfo=UTC)),
        ("2026-12-13T08:00Z", datetime(2026, 12, 13, 8, 0, tzinfo=UTC)),
        ("2026-12-13T08:00-05:00", datetime(2026, 12, 13, 13, 0, tzinfo=UTC)),
        ("  +2h  ", datetime(2026, 12, 12, 21, 30, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, ZONE, NOW) == expected


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        # Spring: the local times either side of the jump have different offsets.
        ("2026-03-29 01:30", SPRING_EVE, datetime(2026, 3, 29, 0, 30, tzinfo=UTC)),
        ("2026-03-29 03:30", SPRING_EVE, datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        ("2026-03-29 18:00", SPRING_EVE, datetime(2026, 3, 29, 16, 0, tzinfo=UTC)),
        # +1d is the same clock time the next day, whatever the clocks did overnight (23 h)...
        ("+1d", SPRING_EVE, datetime(2026, 3, 29, 16, 0, tzinfo=UTC)),
        # ... while hours are elapsed time: 24 h after 18:00 CET is 19:00 CEST.
        ("+24h", SPRING_EVE, datetime(2026, 3, 29, 17, 0, tzinfo=UTC)),
        # Autumn: the day has 25 hours.
        ("+1d", AUTUMN_EVE, datetime(2026, 10, 25, 17, 0, tzinfo=UTC)),
        ("+24h", AUTUMN_EVE, datetime(2026, 10, 25, 16, 0, tzinfo=UTC)),
        ("2026-10-25 18:00", AUTUMN_EVE, datetime(2026, 10, 25, 17, 0, tzinfo=UTC)),
        # 02:30 comes twice: the first (summer time, +02:00) is taken...
        ("2026-10-25 02:30", AUTUMN_EVE, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        # ... and an explicit offset names either.
        ("2026-10-25T02:30+02:00", AUTUMN_EVE, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("2026-10-25T02:30+01:00", AUTUMN_EVE, datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
    ],
)
def test_parse_when_on_the_nights_the_clocks_change(
    text: str, now: datetime, expected: datetime
) -> None:
    assert parse_when(text, ZONE, now) == expected


@pytest.mark.parametrize("text", ["2026-03-29 02:30", "2026-03-29T02:00", "2026-03-29 02:59"])
def test_a_skipped_local_time_is_refused_with_one_that_exists(text: str) -> None:
    with pytest.raises(InputError, match="does not exist in Europe/Stockholm") as caught:
        parse_when(text, ZONE, SPRING_EVE)
    assert "2026-03-29 03:" in str(caught.value)


def test_a_skipped_clock_time_typed_alone_is_refused_on_that_day() -> None:
    early = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # 00:00 CET on the 29th
    with pytest.raises(InputError, match="does not exist"):
        parse_when("02:30", ZONE, early)


def test_the_first_of_two_equal_clock_times_is_named_and_the_second_explained() -> None:
    first = parse_when("2026-10-25 02:30", ZONE, AUTUMN_EVE)
    note = ambiguity_note(first, ZONE)
    assert note is not None
    assert "first" in note and "02:30+02:00" in note and "2026-10-25T02:30+01:00" in note
    second = parse_when("2026-10-25T02:30+01:00", ZONE, AUTUMN_EVE)
    assert "second" in (ambiguity_note(second, ZONE) or "")
    assert ambiguity_note(parse_when("2026-10-25 18:00", ZONE, AUTUMN_EVE), ZONE) is None


@pytest.mark.parametrize(
    "text",
    ["tomorrow", "+5x", "25:00", "+", "", "+-1h", "+1.5h", "2026-12-13", "+²h", "12/13 18:00"],
)
def test_parse_when_refuses_nonsense(text: str) -> None:
    with pytest.raises(InputError, match="is not a time"):
        parse_when(text, ZONE, NOW)


@pytest.mark.parametrize("text", ["+99999999999d", "+999999999999999h", "0001-01-01T00:00"])
def test_parse_when_refuses_times_outside_the_calendar(text: str) -> None:
    with pytest.raises(InputError, match="outside the calendar"):
        parse_when(text, ZONE, NOW)


def test_format_local_in_swedish() -> None:
    assert format_local(NOW, ZONE) == "12 december 2026 kl. 20:30"
    assert format_local(datetime(2026, 7, 1, 6, 5, tzinfo=UTC), ZONE) == "1 juli 2026 kl. 08:05"


def test_format_short_has_the_swedish_weekday_and_the_year_only_when_another() -> None:
    tuesday = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert format_short(tuesday, ZONE, NOW) == "tis 1 dec 18:00"
    assert format_short(datetime(2027, 1, 3, 8, 0, tzinfo=UTC), ZONE, NOW) == "sön 3 jan 2027 09:00"
    assert format_short(datetime(2026, 6, 1, 8, 0, tzinfo=UTC), ZONE) == "mån 1 jun 10:00"
    last = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)  # no local time east of UTC
    assert format_short(last, ZONE, NOW) == "9999-12-31 23:59 UTC"
