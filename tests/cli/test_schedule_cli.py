"""`send --at` at the command line: shown in status and list, moved, taken back, refused.

The CLI runs with a clock fixed at Saturday 12 December 2026, 20:30 in Stockholm (19:30 UTC),
or at the eve of a night when the clocks change.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import broadcaster.app
from broadcaster.app import App
from broadcaster.workspace import Workspace
from tests.conftest import Cli, FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Every App the CLI opens in this test reads this clock."""
    fixed = FakeClock()
    real_open_app = broadcaster.app.open_app

    def open_app(workspace: Workspace, *args: object, **kwargs: object) -> App:
        return real_open_app(workspace, fixed)

    monkeypatch.setattr(broadcaster.app, "open_app", open_app)
    return fixed


def approved(cli: Cli) -> str:
    drafted = cli("draft", "--title", "Vattnet", "--body", "Koka vattnet.", "--json")
    assert drafted.exit_code == 0, drafted.stderr
    number = str(drafted.json()["id"])
    assert cli("submit", number).exit_code == 0
    for person in ("anna.hasselbom", "jens.odevall"):
        assert cli("approve", number, "--as", person).exit_code == 0
    return number


def test_a_scheduled_send_is_shown_moved_and_taken_back(cli: Cli, clock: FakeClock) -> None:
    number = approved(cli)
    sent = cli("send", number, "--at", "2026-12-12 22:00")
    assert sent.exit_code == 0, sent.stderr
    assert "at lör 12 dec 22:00 (Europe/Stockholm)" in sent.stdout
    assert f"broadcaster send {number} --cancel" in sent.stdout

    status = cli("status", number)
    assert "Scheduled: lör 12 dec 22:00 (Europe/Stockholm)" in status.stdout
    schedule = cli("status", number, "--json").json()["schedule"]
    assert schedule == {
        "kind": "once",
        "at": "2026-12-12T21:00:00+00:00",
        "local": "lör 12 dec 22:00",
        "timezone": "Europe/Stockholm",
    }
    wide = Cli(cwd=cli.cwd, env={**cli.env, "COLUMNS": "200"})  # a table cell on one line
    assert "scheduled lör 12 dec 22:00" in wide("list").stdout
    assert cli("list", "--json").json()["announcements"][0]["schedule"] == schedule
    assert "scheduled lör 12 dec 22:00" in wide("status").stdout

    moved = cli("send", number, "--at", "+2h")
    assert moved.exit_code == 0, moved.stderr
    assert "Moved the send" in moved.stdout and "lör 12 dec 22:30" in moved.stdout
    assert "it was due lör 12 dec 22:00" in moved.stdout
    assert cli("status", number, "--json").json()["schedule"]["local"] == "lör 12 dec 22:30"

    taken_back = cli("send", number, "--cancel")
    assert taken_back.exit_code == 0, taken_back.stderr
    assert "Took back the send" in taken_back.stdout
    after = cli("status", number, "--json").json()
    assert (after["state"], after["schedule"]) == ("approved", None)

    again = cli("unschedule", number)
    assert again.exit_code == 1
    assert "no scheduled send to take back" in again.stderr


def test_unschedule_is_the_same_as_send_cancel(cli: Cli, clock: FakeClock) -> None:
    number = approved(cli)
    assert cli("send", number, "--at", "+1d").exit_code == 0
    result = cli("unschedule", number)
    assert result.exit_code == 0, result.stderr
    assert cli("status", number, "--json").json()["state"] == "approved"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        # Today's 20:00 has passed at 20:30: refused, not silently moved to tomorrow.
        ("20:00", "lör 12 dec 20:00 is in the past: it is now lör 12 dec 20:30"),
        ("2026-12-01T10:00+01:00", "it is now lör 12 dec 20:30 (Europe/Stockholm)"),
        ("+8d", "needs --yes"),
        ("9999-12-31T23:59", "more than a year ahead"),
        ("0001-01-01T00:00", "outside the calendar"),
        ("+99999999999d", "outside the calendar"),
        ("i morgon", "is not a time"),
    ],
)
def test_a_bad_time_is_refused_and_nothing_is_queued(
    cli: Cli, clock: FakeClock, when: str, message: str
) -> None:
    number = approved(cli)
    result = cli("send", number, "--at", when)
    assert result.exit_code == 2, result.stdout
    assert message in " ".join(result.stderr.split())
    assert cli("status", number, "--json").json()["state"] == "approved"


def test_more_than_a_week_ahead_goes_with_yes(cli: Cli, clock: FakeClock) -> None:
    number = approved(cli)
    result = cli("send", number, "--at", "+8d", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "sön 20 dec 20:30" in result.stdout


def test_cancel_and_at_together_is_a_usage_error(cli: Cli, clock: FakeClock) -> None:
    number = approved(cli)
    result = cli("send", number, "--at", "+1h", "--cancel")
    assert result.exit_code == 2
    assert "not both" in result.stderr


def test_the_skipped_spring_hour_is_refused(cli: Cli, clock: FakeClock) -> None:
    clock.now = datetime(2026, 3, 28, 17, 0, tzinfo=UTC)
    number = approved(cli)
    result = cli("send", number, "--at", "2026-03-29 02:30")
    assert result.exit_code == 2
    assert "does not exist in Europe/Stockholm" in result.stderr
    ok = cli("send", number, "--at", "2026-03-29 03:30")
    assert ok.exit_code == 0, ok.stderr
    assert cli("status", number, "--json").json()["schedule"]["at"] == "2026-03-29T01:30:00+00:00"


def test_the_doubled_autumn_hour_takes_the_first_and_says_so(cli: Cli, clock: FakeClock) -> None:
    clock.now = datetime(2026, 10, 24, 16, 0, tzinfo=UTC)
    number = approved(cli)
    result = cli("send", number, "--at", "2026-10-25 02:30")
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "comes twice" in text and "2026-10-25T02:30+01:00" in text
    schedule = cli("status", number, "--json").json()["schedule"]
    assert (schedule["at"], schedule["local"]) == ("2026-10-25T00:30:00+00:00", "sön 25 okt 02:30")
