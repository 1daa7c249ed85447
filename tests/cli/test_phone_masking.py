"""Phone numbers never appear unmasked: not in stored errors, dead letters, output or logs."""

from __future__ import annotations

import io
import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest

from broadcaster.logs import log_to
from broadcaster.privacy import mask_phone_numbers
from tests.conftest import Cli

#: A publish step whose failure quotes a recipient's number in three common forms.
QUOTING_STEP = (
    'publish_command = ["sh", "-c", "echo \'upload refused for +46 70 123 45 67 '
    "(070-123 45 67, +46701234567)' >&2; exit 3\"]"
)
#: Pieces of the numbers above that must never be seen again.
UNMASKED = re.compile(r"123 ?45|1234567|70-123")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call +46 70 123 45 67 now", "call +46 70 *** ** 67 now"),
        ("to=+46701234567;", "to=+46 70 *** ** 67;"),
        ("070-123 45 67 is busy", "070 *** ** 67 is busy"),
        ("(070-123 45 67) and (070) 123 45 67", "(070 *** ** 67) and 070 *** ** 67"),
        ("Twilio 21211: +15550109999 invalid", "Twilio 21211: +1 555 *** ** 99 invalid"),
        ("job 123456 at 2026-12-02 21:40:05 on 127.0.0.1:8765", None),
        ("post 1234567890_0987654321", None),
    ],
)
def test_numbers_in_text_are_masked_where_they_stand(text: str, masked: str | None) -> None:
    assert mask_phone_numbers(text) == (text if masked is None else masked)


def refuse(message: str) -> None:
    raise ValueError(message)


def test_log_records_are_masked_by_the_handler() -> None:
    stream = io.StringIO()
    with log_to(stream, "Europe/Stockholm"):
        logging.getLogger("broadcaster.test").warning("platform said: %s", "+46 70 123 45 67")
        try:
            refuse("recipient 070-123 45 67 refused")
        except ValueError:
            logging.getLogger("broadcaster.test").exception("failed")
    assert "+46 70 *** ** 67" in stream.getvalue()
    assert not UNMASKED.search(stream.getvalue()), stream.getvalue()


def failing_run(cli: Cli, workspace_dir: Path) -> tuple[int, list[str]]:
    """A full run whose website publish step fails quoting numbers; returns every output."""
    config = workspace_dir / "broadcaster.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        .replace('output_dir = "site/borgholm"', f'output_dir = "site/borgholm"\n{QUOTING_STEP}')
        .replace("[approval]", "[channels.website]\nmax_attempts = 1\n\n[approval]", 1),
        encoding="utf-8",
    )
    outputs: list[str] = []

    def run(*args: str) -> str:
        result = cli(*args)
        outputs.extend([result.stdout, result.stderr])
        return result.stdout

    announcement = int(json.loads(run("draft", "-t", "Läget", "-b", "Text", "--json"))["id"])
    run("submit", str(announcement))
    run("approve", str(announcement), "--as", "anna.hasselbom")
    run("approve", str(announcement), "--as", "jens.odevall")
    run("send", str(announcement))
    run("worker", "--until-idle")
    run("worker", "--until-idle", "--json-logs")
    for args in (
        ["status"],
        ["status", str(announcement)],
        ["status", str(announcement), "--wide"],
        ["status", str(announcement), "--json"],
        ["deadletters"],
        ["deadletters", "--wide"],
        ["deadletters", "--json"],
        ["audit", str(announcement)],
        ["audit", "--json"],
        ["list", "--json"],
    ):
        run(*args)
    return announcement, outputs


def stored_errors(workspace_dir: Path) -> list[str]:
    with sqlite3.connect(workspace_dir / "broadcaster.db") as db:
        rows = db.execute(
            "SELECT last_error FROM deliveries UNION ALL SELECT last_error FROM jobs "
            "UNION ALL SELECT details FROM audit_events"
        ).fetchall()
    return [row[0] for row in rows if row[0]]


def test_a_full_run_never_shows_an_unmasked_number(cli: Cli, workspace_dir: Path) -> None:
    announcement, outputs = failing_run(cli, workspace_dir)
    everything = "\n".join([*outputs, *stored_errors(workspace_dir)])
    assert "+46 70 *** ** 67" in everything  # the platform's answer did arrive, masked
    assert "070 *** ** 67" in everything
    found = UNMASKED.findall(everything)
    assert not found, [line for line in everything.splitlines() if UNMASKED.search(line)]
    status = cli("status", str(announcement), "--json").json()
    (dead,) = [d for d in status["deliveries"] if d["state"] == "dead"]
    assert "publish_command exited with 3" in dead["last_error"]


def test_errors_stored_before_masking_are_masked_on_the_way_out(
    cli: Cli, workspace_dir: Path
) -> None:
    announcement, _ = failing_run(cli, workspace_dir)
    with sqlite3.connect(workspace_dir / "broadcaster.db") as db:
        db.execute("UPDATE deliveries SET last_error = 'old answer: +46 70 765 43 21'")
    for args in (
        ["status", str(announcement), "--json"],
        ["status", str(announcement), "--wide"],
        ["deadletters", "--json"],
        ["deadletters", "--wide"],
    ):
        result = cli(*args)
        assert "765 43" not in result.stdout, args
        assert "+46 70 *** ** 21" in result.stdout, args


def test_a_number_in_a_reason_is_masked_in_the_audit_log(cli: Cli) -> None:
    announcement = cli("draft", "-t", "Läget", "-b", "Text", "--json").json()["id"]
    cli("submit", str(announcement))
    reason = "Ring mig först på 070-123 45 67"
    assert cli("reject", str(announcement), "-r", reason, "--as", "anna.hasselbom").exit_code == 0
    for args in (["audit", str(announcement), "--json"], ["audit", str(announcement), "--wide"]):
        output = cli(*args).stdout
        assert "070 *** ** 67" in output, args
        assert not UNMASKED.search(output), args
