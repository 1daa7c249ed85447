"""`status` of SMS lists at the command line: a table of counts per list, progress bars under
--follow, the failed recipients only with --target T --failed; `lists purge-deliveries`."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from broadcaster.app import App, open_app
from broadcaster.cli.status_view import follow
from broadcaster.model import DeliveryState
from broadcaster.timeutil import utcnow
from broadcaster.worker_runtime import run_worker
from broadcaster.workspace import load_workspace
from tests.cli.test_tables_cli import assert_fits
from tests.conftest import Cli, FakeClock
from tests.factories import SMS_TARGET, add_sms_target, set_outcome
from tests.test_list_progress import dispatched, mixed

S = DeliveryState


@pytest.fixture
def sms_app(workspace_dir: Path) -> Iterator[App]:
    """The CLI's workspace with an SMS target, opened as an App (the library's view of it) on
    the CLI's clock: a dispatch there is not in the CLI's future."""
    add_sms_target(workspace_dir)
    clock = FakeClock(utcnow())
    application = open_app(load_workspace(workspace_dir / "broadcaster.toml", {}), clock=clock)
    yield application
    application.close()


@pytest.fixture
def narrow(cli: Cli) -> Cli:
    return Cli(cwd=cli.cwd, env={**cli.env, "COLUMNS": "80"})


@pytest.fixture
def announcement(sms_app: App) -> int:
    announcement_id = dispatched(sms_app)
    mixed(sms_app, announcement_id)
    return announcement_id


def test_status_shows_a_small_table_per_list(narrow: Cli, announcement: int) -> None:
    result = narrow("status", str(announcement))
    assert result.exit_code == 0, result.stderr
    assert_fits(result.stdout)
    header = r"^list +recipients  sent  delivered  failed  pending  opted out  cancelled *$"
    assert re.search(header, result.stdout, re.M), result.stdout
    assert "\nRecipient lists\n" in result.stdout
    assert re.search(r"^sms-borgholm\s+21\s+4\s+4\s+5\s+5\s+2\s+1 *$", result.stdout, re.M)
    # The per-target table sums the list up in one row: its state and most tries.
    assert re.search(r"^sms-borgholm\s+sms\s+sending\s+1\s", result.stdout, re.M), result.stdout
    hint = (
        f"Failed on sms-borgholm: broadcaster status {announcement} --target sms-borgholm --failed"
    )
    assert hint in result.stdout
    assert "+46 70" not in result.stdout  # no recipient is shown, masked or not


def test_status_json_has_the_lists_and_no_row_per_recipient(cli: Cli, announcement: int) -> None:
    document = cli("status", str(announcement), "--json").json()
    assert document["lists"] == {
        SMS_TARGET: {
            "revision": 1,
            "recipients": 21,
            "sent": 4,
            "delivered": 4,
            "failed": 5,
            "pending": 5,
            "opted_out": 2,
            "cancelled": 0 + 1,
        }
    }
    assert [(d["target"], d.get("recipients")) for d in document["deliveries"]] == [
        ("web-borgholm", None),
        (SMS_TARGET, 21),
    ]


def test_one_target_shows_its_summary_only(narrow: Cli, announcement: int) -> None:
    result = narrow("status", str(announcement), "--target", SMS_TARGET)
    assert result.exit_code == 0, result.stderr
    assert "web-borgholm" not in result.stdout
    assert re.search(r"^sms-borgholm\s+21\s", result.stdout, re.M)
    document = narrow("status", str(announcement), "--target", "web-borgholm", "--json").json()
    assert [d["target"] for d in document["deliveries"]] == ["web-borgholm"]
    assert document["lists"] == {}


def test_failed_recipients_on_request(narrow: Cli, announcement: int) -> None:
    result = narrow("status", str(announcement), "--target", SMS_TARGET, "--failed")
    assert result.exit_code == 0, result.stderr
    assert_fits(result.stdout)
    assert "sms-borgholm, revision 1: 5 failed recipient(s)" in result.stdout
    rows = re.findall(r"^\d+\s+(\+46 70 \*\*\* \*\* \d\d)\s+(\w+)\s*(\d*)", result.stdout, re.M)
    assert rows == [
        ("+46 70 *** ** 13", "undelivered", "30003"),
        ("+46 70 *** ** 14", "undelivered", "30003"),
        ("+46 70 *** ** 15", "failed", "30008"),
        ("+46 70 *** ** 16", "dead", ""),
        ("+46 70 *** ** 17", "dead", ""),
    ]
    assert "Twilio 21211: +46 70 *** ** 05 …" in result.stdout  # cut to fit 80 columns ...
    wide = narrow("status", str(announcement), "--target", SMS_TARGET, "--failed", "--wide")
    assert "Twilio 21211: +46 70 *** ** 05 is not a number" in wide.stdout  # ... not with --wide
    document = narrow("status", str(announcement), "--target", SMS_TARGET, "--failed", "--json")
    report = document.json()
    assert (report["target"], report["revision"], report["count"]) == (SMS_TARGET, 1, 5)
    assert {row["number"][:9] for row in report["failed"]} == {"+46 70 **"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "sms-nowhere"], "has no target 'sms-nowhere'; its targets: sms-borgholm"),
        (["--target", "sms-nowhere", "--failed"], "has no target 'sms-nowhere'"),
        (["--failed"], "--failed needs --target TARGET"),
        (["--target", SMS_TARGET, "--failed", "--follow"], "leave out --follow"),
        (["--target", "web-borgholm", "--failed"], "no recipients on web-borgholm"),
    ],
)
def test_bad_target_options_are_usage_errors(
    cli: Cli, announcement: int, args: list[str], message: str
) -> None:
    result = cli("status", str(announcement), *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split()), result.stderr
    as_json = cli("status", str(announcement), *args, "--json")
    assert as_json.exit_code == 2
    assert message in as_json.json()["error"]["message"]


def test_target_needs_an_announcement(cli: Cli) -> None:
    result = cli("status", "--target", SMS_TARGET)
    assert result.exit_code == 2
    assert "need an announcement" in result.stderr


def test_status_help_says_how_the_counts_add_up(cli: Cli) -> None:
    text = " ".join(cli("status", "--help").stdout.split())
    assert "add up to the recipients" in text
    assert "--target TARGET --failed" in text


def test_follow_draws_a_bar_per_list_until_the_announcement_settles(
    sms_app: App, announcement: int
) -> None:
    pending = _ids(sms_app, announcement, "pending", "sending", "retrying", "unknown")
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80, height=50, highlight=False)
    follower = threading.Thread(
        target=follow, args=(sms_app, announcement), kwargs={"console": console, "poll": 0.05}
    )
    follower.start()
    try:
        _wait_for(screen, "16/21")
        set_outcome(sms_app, pending[:3], S.SENT, platform_status="delivered")
        _wait_for(screen, "19/21")
        set_outcome(sms_app, pending[3:], S.SENT)
        _wait_for(screen, "21/21")
        asyncio.run(run_worker(sms_app, until_idle=True))  # the website, and the settling
    finally:
        follower.join(timeout=10)
    assert not follower.is_alive()
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert_fits(plain)
    last_picture = plain.rsplit("partially_failed", 1)[-1]
    assert re.search(r"sms-borgholm +━+ +21/21 +100%", last_picture), last_picture
    # Done is every recipient no longer pending: 16 of 21 (the bar's rest is dimmed)
    assert re.search(r"sms-borgholm +━{30,}╺━+ +16/21 +76%", plain), plain


def _ids(app: App, announcement_id: int, *states: str) -> list[int]:
    with app.store.read() as conn:
        from sqlalchemy import select

        from broadcaster.store.schema import deliveries

        query = select(deliveries.c.id).where(
            deliveries.c.announcement_id == announcement_id,
            deliveries.c.recipient != "",
            deliveries.c.state.in_(states),
        )
        return sorted(conn.execute(query).scalars())


def _wait_for(screen: io.StringIO, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in screen.getvalue():
        assert time.monotonic() < deadline, screen.getvalue()[-2000:]
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# lists purge-deliveries


def _age(workspace_dir: Path, days: int) -> None:
    """Make every delivery in the workspace's database ``days`` old (as if dispatched then)."""
    with sqlite3.connect(workspace_dir / "broadcaster.db") as db:
        db.execute("UPDATE deliveries SET created_at = datetime(created_at, ?)", (f"-{days} days",))


def test_purge_deliveries(cli: Cli, workspace_dir: Path, announcement: int) -> None:
    _age(workspace_dir, 45)
    result = cli("lists", "purge-deliveries", "--older-than", "30d", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert (report["older_than"], report["purged"], report["unfinished"]) == ("30d", 16, 5)
    again = cli("lists", "purge-deliveries", "--older-than", "30d")
    assert again.exit_code == 0, again.stderr
    text = " ".join(again.stdout.split())
    assert "Purged the numbers of 0 delivery(ies) dispatched before" in text
    assert "5 unfinished one(s) as old keep theirs until they finish." in text
    status = cli("status", str(announcement), "--json").json()
    assert status["lists"][SMS_TARGET]["recipients"] == 21  # the history and counts stay
    failed = cli("status", str(announcement), "--target", SMS_TARGET, "--failed", "--json")
    assert {row["number"] for row in failed.json()["failed"]} == {"(purged)"}
    audit = cli("audit", "--json").json()["events"]
    assert [e["details"]["purged"] for e in audit if e["action"] == "deliveries_purged"] == [16, 0]


@pytest.mark.parametrize("age", ["30", "30 d", "1.5d", "-30d", "0d", "30days", "30D", "1y"])
def test_purge_refuses_a_bad_age(
    cli: Cli, workspace_dir: Path, announcement: int, age: str
) -> None:
    _age(workspace_dir, 45)
    result = cli("lists", "purge-deliveries", "--older-than", age)
    assert result.exit_code == 2
    assert "is not a duration" in result.stderr
    as_json = cli("lists", "purge-deliveries", "--older-than", age, "--json")
    assert as_json.exit_code == 2
    assert "h (hours), d (days) or w (weeks)" in as_json.json()["error"]["message"]
    with sqlite3.connect(workspace_dir / "broadcaster.db") as db:
        (purged,) = db.execute(
            "SELECT count(*) FROM deliveries WHERE recipient LIKE 'purged:%'"
        ).fetchone()
    assert purged == 0


def test_purge_needs_an_age(cli: Cli) -> None:
    result = cli("lists", "purge-deliveries")
    assert result.exit_code == 2
    assert "--older-than" in result.stderr
    assert json.loads(cli("lists", "purge-deliveries", "--json").stdout)["error"]
