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
from tests.conftest import Cli, CliResult

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


# ---------------------------------------------------------------------------------------------
# The sweep: every path that touches an SMS list, its output and its log records

#: A Swedish number left whole: +46 and at least eight more digits, or the national 07x form
#: (with spaces or hyphens in either); not inside a longer token such as a content hash.
WHOLE_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])\+46[\s-]*\d(?:[\s-]*\d){7,}"
    r"|(?<![0-9A-Za-z*])07\d(?:[\s-]*\d){6,}(?![0-9A-Za-z])"
)
LIST_CSV = (
    "number;name;tags\n"
    "070-174 06 01;Anna Andersson;hemtjänst\n"
    "+46 70 174 06 02;Bo;\n"
    "0701740603;Cecilia;anhörig|hemtjänst\n"
    "+46701740601;Anna igen;\n"
    "070-17;Fel;\n"
    "0046701740604;Dagny;\n"
)


def test_the_whole_pattern_finds_numbers_and_passes_masked_ones() -> None:
    for whole in ("+46701740601", "+46 70 174 06 01", "070-174 06 01", "to=0701740601."):
        assert WHOLE_NUMBER.search(whole), whole
    for masked in ("+46 70 *** ** 01", "070 *** ** 01", "****17", "sha 0a070123456789ff", "07:30"):
        assert not WHOLE_NUMBER.search(masked), masked


def test_no_sms_path_shows_or_logs_a_whole_number(
    cli: Cli, workspace_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from broadcaster.app import open_app
    from broadcaster.model import DeliveryState
    from broadcaster.timeutil import utcnow
    from broadcaster.workspace import load_workspace
    from tests.conftest import FakeClock
    from tests.factories import SMS_TARGET, add_sms_target, set_outcome
    from tests.test_list_progress import dispatched, mixed

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="broadcaster")
    add_sms_target(workspace_dir)
    (workspace_dir / "boende.csv").write_text(LIST_CSV, encoding="utf-8")
    (workspace_dir / "stopp.csv").write_text("070-174 06 07\n+46701740608\n", encoding="utf-8")
    outputs: list[str] = []

    def run(*args: str) -> CliResult:
        result = cli(*args)
        outputs.extend([result.stdout, result.stderr, str(result.exception or "")])
        return result

    run("lists", "import", "boende", "boende.csv", "--organisation", "borgholm")
    run("lists", "import", "boende", "boende.csv", "--replace", "--json")
    run("lists", "show")
    run("lists", "show", "boende", "--json")
    for args in (
        ["optout", "add", "070-174 06 04"],
        ["optout", "add", "+46 70 174 06 05", "--json"],
        ["optout", "add", "070-174 06 04"],  # again: "it already was"
        ["optout", "remove", "0701740605"],
        ["optout", "remove", "+46701740699"],  # not on the list: an error naming it
        ["optout", "remove", "+46701740699", "--json"],
        ["optout", "add", "070-17"],  # not a number: an error quoting it
        ["optout", "import", "stopp.csv"],
        ["optout", "import", "stopp.csv", "--json"],
    ):
        run(*args)
    draft = run("draft", "-t", "Vatten", "-b", "Koka vattnet", "--to", SMS_TARGET, "--json")
    draft_id = str(draft.json()["id"])
    for args in (["preview", draft_id], ["preview", draft_id, "--json"]):
        run(*args)
    run("preview", draft_id, "--target", SMS_TARGET, "--json")

    app = open_app(
        load_workspace(workspace_dir / "broadcaster.toml", {}), clock=FakeClock(utcnow())
    )
    try:
        sent = dispatched(app)
        outcomes = mixed(app, sent)  # one error was stored quoting +46 70 174 06 05 whole
        set_outcome(
            app,
            outcomes["failed"][-1:],
            DeliveryState.DEAD,
            last_error=(
                "Twilio 21614: To number +46701740617 (070-174 06 17) is not a mobile number"
            ),
        )
        set_outcome(app, outcomes["pending"], DeliveryState.SENT)
    finally:
        app.close()
    number = str(sent)
    run("worker", "--until-idle", "--json-logs")  # delivers the website; the send settles
    for args in (
        ["status"],
        ["status", "--json"],
        ["status", number],
        ["status", number, "--json"],
        ["status", number, "--wide"],
        ["status", number, "--follow"],
        ["status", number, "--target", SMS_TARGET],
        ["status", number, "--target", SMS_TARGET, "--json"],
        ["status", number, "--target", SMS_TARGET, "--failed"],
        ["status", number, "--target", SMS_TARGET, "--failed", "--wide"],
        ["status", number, "--target", SMS_TARGET, "--failed", "--json"],
        ["deadletters"],
        ["deadletters", "--wide"],
        ["deadletters", "--json"],
        ["audit", number],
        ["audit", "--json"],
        ["list", "--json"],
    ):
        assert run(*args).exit_code == 0, args
    with sqlite3.connect(workspace_dir / "broadcaster.db") as db:
        db.execute("UPDATE deliveries SET created_at = datetime(created_at, '-2 days')")
    assert run("lists", "purge-deliveries", "--older-than", "1d", "--json").json()["purged"] == 21
    run("status", number, "--target", SMS_TARGET, "--failed", "--json")
    run("audit", "--json")

    everything = "\n".join(outputs)
    found = [line for line in everything.splitlines() if WHOLE_NUMBER.search(line)]
    assert not found, found
    assert "+46 70 *** ** 17" in everything  # the platform's answer did arrive, masked
    assert "070 *** ** 17" in everything
    assert "+46 70 *** ** 04" in everything  # and an opted-out number, masked
    assert "+46 70 *** ** 13" in everything  # and a failed recipient, masked
    assert caplog.records, "nothing was logged: the sweep would prove nothing about logs"
    logged = [
        text
        for record in caplog.records
        # The message as handlers see it, and every text the record carries (JSON logs print
        # extra fields too).
        for text in (record.getMessage(), *(v for v in vars(record).values() if isinstance(v, str)))
        if WHOLE_NUMBER.search(text)
    ]
    assert not logged, logged
