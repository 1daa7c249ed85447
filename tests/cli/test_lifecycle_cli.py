"""The officer's walk-through at the command line, as the foundation issue describes it."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser

from tests.conftest import Cli

DELIVERY_KEYS = {
    "target",
    "channel",
    "state",
    "attempts",
    "platform_id",
    "last_error",
    "next_attempt_at",
}


def draft(cli: Cli, *extra: str) -> int:
    result = cli(
        "draft",
        "--title",
        "Vattenläcka i Borgholm",
        "--body",
        "Koka vattnet.",
        "--to",
        "all",
        "--json",
        *extra,
    )
    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert set(document) >= {"id", "revision", "state", "content_hash"}
    assert (document["revision"], document["state"]) == (1, "draft")
    assert len(document["content_hash"]) == 64
    return int(document["id"])


def test_draft_to_sent_with_two_approvers(cli: Cli, workspace_dir: Path) -> None:
    announcement = draft(cli)
    preview = cli("preview", str(announcement), "--json")
    assert preview.exit_code == 0, preview.stderr
    targets = preview.json()["targets"]
    assert [t["target"] for t in targets] == ["web-borgholm", "web-morbylanga"]
    assert all(t["errors"] == [] and "index.html" in t["files"] for t in targets)
    assert cli("submit", str(announcement)).exit_code == 0
    first = cli("approve", str(announcement), "--as", "anna.hasselbom")
    assert first.exit_code == 0 and "1 of 2" in first.stdout
    second = cli("approve", str(announcement), "--as", "jens.odevall")
    assert second.exit_code == 0 and "may now be sent" in second.stdout
    assert cli("send", str(announcement)).exit_code == 0
    worker = cli("worker", "--until-idle")
    assert worker.exit_code == 0, worker.stderr
    status = cli("status", str(announcement), "--json").json()
    assert (status["id"], status["state"], status["revision"]) == (announcement, "sent", 1)
    assert status["lists"] == {}
    assert {d["target"]: d["state"] for d in status["deliveries"]} == {
        "web-borgholm": "sent",
        "web-morbylanga": "sent",
    }
    assert all(set(d) >= DELIVERY_KEYS for d in status["deliveries"])
    for org in ("borgholm", "morbylanga"):
        page = (workspace_dir / "site" / org / "index.html").read_text(encoding="utf-8")
        assert "Vattenläcka i Borgholm" in page
        feed = feedparser.parse((workspace_dir / "site" / org / "feed.atom").read_bytes())
        assert feed.entries[0].title == "Vattenläcka i Borgholm"
    audit = cli("audit", str(announcement), "--json").json()
    assert [e["action"] for e in audit["events"]] == [
        "drafted",
        "submitted",
        "approved",
        "approved",
        "dispatched",
        "sent",
    ]
    assert audit["events"][2]["actor"] == "anna.hasselbom"


def test_self_approval_is_refused_with_exit_1(cli: Cli) -> None:
    announcement = draft(cli, "--as", "anna.hasselbom")
    cli("submit", str(announcement), "--as", "anna.hasselbom")
    result = cli("approve", str(announcement), "--as", "anna.hasselbom")
    assert result.exit_code == 1
    assert "anna.hasselbom wrote announcement" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_an_edit_after_approval_voids_it(cli: Cli) -> None:
    announcement = draft(cli)
    cli("submit", str(announcement))
    cli("approve", str(announcement), "--as", "anna.hasselbom")
    cli("approve", str(announcement), "--as", "jens.odevall")
    edited = cli("edit", str(announcement), "--body", "Koka vattnet i fem minuter.", "--json")
    assert edited.exit_code == 0
    assert (edited.json()["revision"], edited.json()["state"]) == (2, "draft")
    refused = cli("send", str(announcement))
    assert refused.exit_code == 1 and "cannot send an announcement that is draft" in refused.stderr


def test_missing_template_variable_is_reported_by_preview(cli: Cli, workspace_dir: Path) -> None:
    override = workspace_dir / "templates" / "website" / "index.html"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text("<p>{{ organisation.fax }}</p>\n", encoding="utf-8")
    announcement = draft(cli)
    result = cli("preview", str(announcement))
    assert result.exit_code == 2
    assert f"{override}, line 1: organisation.fax is undefined" in result.stdout.replace("\n", "")
    as_json = cli("preview", str(announcement), "--json")
    assert as_json.exit_code == 2
    errors = [e for t in as_json.json()["targets"] for e in t["errors"]]
    assert errors and all("organisation.fax is undefined" in e for e in errors)
    submitted = cli("submit", str(announcement))
    assert submitted.exit_code == 2 and "organisation.fax is undefined" in submitted.stderr


def test_preview_of_one_target(cli: Cli) -> None:
    announcement = draft(cli)
    result = cli("preview", str(announcement), "--target", "web-morbylanga", "--json")
    assert [t["target"] for t in result.json()["targets"]] == ["web-morbylanga"]
    wrong = cli("preview", str(announcement), "--target", "fb-borgholm")
    assert wrong.exit_code == 2 and "does not go there" in wrong.stderr


def test_list_and_overview(cli: Cli) -> None:
    first = draft(cli)
    second = draft(cli)
    cli("submit", str(second))
    listed = cli("list", "--json").json()["announcements"]
    assert [(a["id"], a["state"]) for a in listed] == [
        (second, "pending_approval"),
        (first, "draft"),
    ]
    only = cli("list", "--state", "draft", "--json").json()["announcements"]
    assert [a["id"] for a in only] == [first]
    assert cli("list").exit_code == 0
    overview = cli("status", "--json").json()["announcements"]
    assert {row["id"] for row in overview} == {first, second}


def test_reject_with_reason(cli: Cli) -> None:
    announcement = draft(cli)
    cli("submit", str(announcement))
    missing = cli("reject", str(announcement), "--as", "jens.odevall")
    assert missing.exit_code == 2  # --reason is required: a usage error
    result = cli("reject", str(announcement), "--as", "jens.odevall", "--reason", "Fel nummer")
    assert result.exit_code == 0
    assert cli("status", str(announcement), "--json").json()["state"] == "rejected"


def test_body_from_file_and_stdin(cli: Cli, workspace_dir: Path) -> None:
    (workspace_dir / "text.md").write_text("Från fil.\n\n- punkt", encoding="utf-8")
    from_file = cli("draft", "-t", "Fil", "--body-file", "text.md", "--json")
    assert from_file.exit_code == 0, from_file.stderr
    from_stdin = cli("draft", "-t", "Stdin", "--body-file", "-", "--json", input="Från stdin.")
    assert from_stdin.exit_code == 0, from_stdin.stderr
    listed = {a["title"]: a for a in cli("list", "--json").json()["announcements"]}
    assert set(listed) == {"Fil", "Stdin"}


def test_json_output_is_one_document(cli: Cli) -> None:
    announcement = draft(cli)
    for command in (
        ["list"],
        ["status"],
        ["status", str(announcement)],
        ["audit"],
        ["preview", str(announcement)],
    ):
        result = cli(*command, "--json")
        assert result.exit_code == 0, (command, result.stderr)
        json.loads(result.stdout)  # exactly one document, nothing else on stdout


def test_identity_comes_from_as_then_environment(cli: Cli) -> None:
    announcement = draft(cli)
    listed = cli("list", "--json").json()["announcements"][0]
    assert listed["author"] == "kommunikator"  # BROADCASTER_USER in the fixture
    other = draft(cli, "--as", "ann.willsund")
    authors = {a["id"]: a["author"] for a in cli("list", "--json").json()["announcements"]}
    assert authors == {announcement: "kommunikator", other: "ann.willsund"}
    bad = cli("draft", "-t", "x", "-b", "y", "--as", "två ord")
    assert bad.exit_code == 2 and "not a usable name" in bad.stderr
