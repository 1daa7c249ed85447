"""`broadcaster deadletters` and `status` for a delivery that failed for good."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli


def dead_announcement(cli: Cli, workspace_dir: Path) -> int:
    # Make Borgholm's output folder impossible to create, and allow one attempt only.
    config = workspace_dir / "broadcaster.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[approval]", "[channels.website]\nmax_attempts = 1\n\n[approval]", 1
        ),
        encoding="utf-8",
    )
    (workspace_dir / "site").mkdir(exist_ok=True)
    (workspace_dir / "site" / "borgholm").write_text("not a folder")
    announcement = cli("draft", "-t", "Läget", "-b", "Text", "--json").json()["id"]
    cli("submit", str(announcement))
    cli("approve", str(announcement), "--as", "anna.hasselbom")
    cli("approve", str(announcement), "--as", "jens.odevall")
    cli("send", str(announcement))
    assert cli("worker", "--until-idle").exit_code == 0
    return int(announcement)


def test_dead_letter_is_listed_retried_and_delivered(cli: Cli, workspace_dir: Path) -> None:
    announcement = dead_announcement(cli, workspace_dir)
    status = cli("status", str(announcement), "--json").json()
    assert status["state"] == "partially_failed"
    dead = [d for d in status["deliveries"] if d["state"] == "dead"]
    assert [d["target"] for d in dead] == ["web-borgholm"]
    assert "gave up after 1 attempts" in dead[0]["last_error"]
    assert "cannot write" in dead[0]["last_error"]
    listed = cli("deadletters", "--json").json()["deadletters"]
    assert [(d["id"], d["target"], d["attempts"]) for d in listed] == [
        (dead[0]["id"], "web-borgholm", 1)
    ]
    human = cli("deadletters")
    assert "web-borgholm" in human.stdout and "Retry with" in human.stdout
    (workspace_dir / "site" / "borgholm").unlink()  # the administrator fixes the cause
    retried = cli("deadletters", "--retry", str(dead[0]["id"]), "--as", "ann.willsund")
    assert retried.exit_code == 0, retried.stderr
    assert cli("status", str(announcement), "--json").json()["state"] == "dispatching"
    assert cli("worker", "--until-idle").exit_code == 0
    final = cli("status", str(announcement), "--json").json()
    assert final["state"] == "sent"
    assert cli("deadletters", "--json").json()["deadletters"] == []
    actions = [e["action"] for e in cli("audit", str(announcement), "--json").json()["events"]]
    assert actions[-3:] == ["partially_failed", "deadletters_retried", "sent"]


def test_retry_of_something_that_is_not_dead_is_refused(cli: Cli, workspace_dir: Path) -> None:
    dead_announcement(cli, workspace_dir)
    wrong = cli("deadletters", "--retry", "999")
    assert wrong.exit_code == 2 and "not dead letters: 999" in wrong.stderr
    both = cli("deadletters", "--retry", "1", "--all")
    assert both.exit_code == 2
    assert cli("deadletters", "--all").exit_code == 0
    nothing = cli("deadletters", "--all")
    assert nothing.exit_code == 2 and "no dead letters" in nothing.stderr


def test_a_dead_letter_without_its_job_row_gets_a_new_job(cli: Cli, workspace_dir: Path) -> None:
    import sqlite3

    announcement = dead_announcement(cli, workspace_dir)
    (dead,) = cli("deadletters", "--json").json()["deadletters"]
    with sqlite3.connect(workspace_dir / "broadcaster.db") as db:
        db.execute("DELETE FROM jobs WHERE delivery_id = ?", (dead["id"],))
    (workspace_dir / "site" / "borgholm").unlink()
    assert cli("deadletters", "--all").exit_code == 0
    assert cli("worker", "--until-idle").exit_code == 0
    assert cli("status", str(announcement), "--json").json()["state"] == "sent"
