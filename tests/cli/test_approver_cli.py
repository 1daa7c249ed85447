"""What the approver reads (issue 9, points 1-5), at the command line as people type it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from broadcaster.model import Content
from tests.conftest import Cli

LINK = "https://www.borgholm.se/vatten/kokning-av-dricksvatten-i-koepingsvik-och-borgholm-norra"
BODY = (
    "Koka vattnet i minst fem minuter innan du dricker det eller lagar mat med det. "
    f"Läs mer på [kommunens sida]({LINK}) eller ring växeln.\n\n"
    "- Gäller Köpingsvik\n- Gäller Borgholm norra"
)
ANNA, JENS, ANN = "anna.hasselbom", "jens.odevall", "ann.willsund"


def draft(cli: Cli, *extra: str, title: str = "Vattenläcka i Borgholm", body: str = BODY) -> int:
    result = cli("draft", "--title", title, "--body", body, "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return int(result.json()["id"])


def approved(cli: Cli, *extra: str) -> int:
    announcement = draft(cli, *extra)
    assert cli("submit", str(announcement)).exit_code == 0
    for person in (ANNA, JENS):
        assert cli("approve", str(announcement), "--as", person).exit_code == 0
    return announcement


def content_hash(cli: Cli, announcement: int) -> str:
    return str(cli("status", str(announcement), "--json").json()["content_hash"])


def set_approval(workspace_dir: Path, approvers: list[str], extra: str = "") -> None:
    """Rewrite the workspace's [approval] approvers (and add keys after them)."""
    path = workspace_dir / "broadcaster.toml"
    listed = ", ".join(f'"{a}"' for a in approvers)
    text = re.sub(
        r"^approvers = .*$",
        f"approvers = [{listed}]{extra}",
        path.read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# 1. preview shows what the reader will see


def test_preview_shows_the_update_as_a_reader_reads_it(cli: Cli) -> None:
    announcement = draft(cli, "--to", "borgholm", "--link", "https://www.borgholm.se/info")
    result = cli("preview", str(announcement))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Vattenläcka i Borgholm" in out
    assert "Publicerad " in out  # the time line
    assert "Koka vattnet i minst fem minuter" in out
    assert f"({LINK})" in out  # the link's address, written out and whole
    assert "• Gäller Köpingsvik" in out
    assert "(https://www.borgholm.se/info)" in out
    assert "Kontakt: Borgholms kommun, telefon 0485-880 00" in out
    assert "Kommunchef Jens Odevall, 0485-880 10" in out
    # Readable text, not file sizes; wrapped (only an unbreakable address may be longer).
    assert "bytes" not in out and "index.html" not in out
    assert all(len(line) <= 80 for line in out.splitlines() if LINK not in line)
    assert "<p>" not in out and "Till innehållet" not in out  # no markup, no skip link


def test_preview_lists_files_only_when_asked(cli: Cli) -> None:
    announcement = draft(cli)
    result = cli("preview", str(announcement), "--files")
    assert result.exit_code == 0
    assert re.search(r"index\.html\s+\(\d+ bytes\)", result.stdout)
    assert "feed.atom" in result.stdout
    assert "Vattenläcka i Borgholm" in result.stdout  # the text is still there


def test_preview_json_keeps_text_and_files(cli: Cli) -> None:
    announcement = draft(cli)
    document = cli("preview", str(announcement), "--json").json()
    for target in document["targets"]:
        assert "Vattenläcka i Borgholm" in target["text"]
        assert f"({LINK})" in target["text"]
        assert "index.html" in target["files"] and "feed.atom" in target["files"]
        assert target["errors"] == []
    texts = [t["text"] for t in document["targets"]]
    assert "Borgholms kommun" in texts[0] and "Mörbylånga kommun" in texts[1]


# ---------------------------------------------------------------------------------------------
# 2. show: the exact revision that was approved, who approved it and when, and its hash


def test_show_prints_what_was_approved_by_whom_and_its_hash(cli: Cli) -> None:
    announcement = approved(cli)
    full_hash = content_hash(cli, announcement)
    result = cli("show", str(announcement))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert full_hash in out
    assert "Approved (2 of 2 required)" in out
    assert re.search(rf"{ANNA}, \d+ december 2026 kl\. \d\d:\d\d, via cli", out)
    assert JENS in out
    assert f"[kommunens sida]({LINK})" in out  # the body exactly as stored, markdown and all

    document = cli("show", str(announcement), "--json").json()
    assert (document["revision"], document["content_hash"]) == (1, full_hash)
    assert document["approved"] is True and document["hash_verified"] is True
    assert [a["person"] for a in document["approved_by"]] == [ANNA, JENS]
    assert all(a["content_hash"] == full_hash and a["decided_at"] for a in document["approved_by"])
    assert document["content"]["body"] == BODY


def test_preview_of_a_sent_announcement_says_who_approved_it(cli: Cli) -> None:
    announcement = approved(cli)
    assert cli("send", str(announcement)).exit_code == 0
    assert cli("worker", "--until-idle").exit_code == 0
    full_hash = content_hash(cli, announcement)
    result = cli("preview", str(announcement))
    assert result.exit_code == 0
    assert f"Revision 1, content hash:\n  {full_hash}" in result.stdout
    assert "Approved (2 of 2 required)" in result.stdout and ANNA in result.stdout
    approval = cli("preview", str(announcement), "--json").json()["approval"]
    assert approval["content_hash"] == full_hash and approval["approved"] is True
    assert [a["person"] for a in approval["approved_by"]] == [ANNA, JENS]


def test_show_of_an_older_revision_and_of_nothing(cli: Cli) -> None:
    announcement = approved(cli)
    assert cli("edit", str(announcement), "--title", "Ny rubrik").exit_code == 0
    old = cli("show", str(announcement), "--revision", "1", "--json").json()
    assert (old["revision"], old["current_revision"], old["approved"]) == (1, 2, False)
    assert [a["person"] for a in old["approved_by"]] == [ANNA, JENS]
    assert "older revision" in cli("show", str(announcement), "--revision", "1").stdout
    current = cli("show", str(announcement))
    assert f"broadcaster show {announcement} --revision 1" in current.stdout
    note = cli("show", str(announcement), "--json").json()["note"]
    assert (note["kind"], note["voided_approvals"]) == ("approvals_voided", [ANNA, JENS])
    missing = cli("show", str(announcement), "--revision", "7")
    assert missing.exit_code == 2 and "has no revision 7" in missing.stderr
    assert cli("show", "999").exit_code == 2


# ---------------------------------------------------------------------------------------------
# 3. submit refuses what can never be approved; check reports the configuration


def test_submit_refuses_when_too_few_may_approve(cli: Cli, workspace_dir: Path) -> None:
    set_approval(workspace_dir, [JENS, ANNA])
    announcement = draft(cli, "--as", ANNA)
    result = cli("submit", str(announcement), "--as", ANNA)
    assert result.exit_code == 1
    assert "could never be approved" in result.stderr
    assert f"only 1 approver(s) may give one: {JENS}" in result.stderr
    assert f"{ANNA} wrote or edited it" in result.stderr
    assert "Traceback" not in result.stderr
    status = cli("status", str(announcement), "--json").json()
    assert status["state"] == "draft"
    actions = [e["action"] for e in cli("audit", str(announcement), "--json").json()["events"]]
    assert actions == ["drafted"]


def test_everyone_who_edited_is_not_eligible(cli: Cli) -> None:
    announcement = draft(cli)
    assert cli("edit", str(announcement), "--title", "Ändrad", "--as", JENS).exit_code == 0
    assert cli("edit", str(announcement), "--title", "Ändrad igen", "--as", ANNA).exit_code == 0
    refused = cli("submit", str(announcement))
    assert refused.exit_code == 1
    assert f"may give one: {ANN} ({JENS}, {ANNA} wrote or edited it)" in refused.stderr


def test_submit_names_who_may_approve_and_approve_agrees(cli: Cli) -> None:
    announcement = draft(cli)
    assert cli("edit", str(announcement), "--title", "Ändrad", "--as", JENS).exit_code == 0
    submitted = cli("submit", str(announcement))
    assert submitted.exit_code == 0
    assert f"2 approval(s) from: {ANNA}, {ANN} (not {JENS}: wrote or edited it)" in (
        " ".join(submitted.stdout.split())
    )
    editor = cli("approve", str(announcement), "--as", JENS)
    assert editor.exit_code == 1 and f"{JENS} edited announcement" in editor.stderr


def test_check_reports_approvers_who_also_write(cli: Cli, workspace_dir: Path) -> None:
    set_approval(workspace_dir, [JENS, ANNA], extra=f'\nauthors = ["kommunikator", "{ANNA}"]')
    result = cli("check")
    assert result.exit_code == 2
    out = " ".join(result.stdout.split())
    assert "[approval] required = 2 with 2 approver(s)" in out
    assert f"{ANNA} (listed in [approval] authors)" in out
    assert "can never be approved" in out


def test_check_finds_likely_authors_in_the_history(cli: Cli, workspace_dir: Path) -> None:
    assert cli("check").exit_code == 0
    draft(cli, "--as", JENS)
    set_approval(workspace_dir, [JENS, ANNA])
    result = cli("check", "--json")
    assert result.exit_code == 2
    (problem,) = [p for p in result.json()["problems"] if "approval" in p]
    assert f"{JENS} (wrote or edited 1 revision(s) here)" in problem


def test_check_and_submit_without_approvers(cli: Cli, workspace_dir: Path) -> None:
    set_approval(workspace_dir, [])
    result = cli("check")
    assert result.exit_code == 2
    assert "no announcement can ever be approved" in " ".join(result.stdout.split())
    refused = cli("submit", str(draft(cli)))
    assert refused.exit_code == 1 and "may give one: nobody" in refused.stderr


# ---------------------------------------------------------------------------------------------
# 4. reasons travel


def test_a_rejection_reason_shows_in_status_and_list(cli: Cli) -> None:
    announcement = draft(cli)
    cli("submit", str(announcement))
    reason = "Fel telefonnummer i andra stycket"
    assert cli("reject", str(announcement), "--as", JENS, "--reason", reason).exit_code == 0
    status = cli("status", str(announcement))
    assert f"rejected by {JENS}: {reason}" in " ".join(status.stdout.split())
    note = cli("status", str(announcement), "--json").json()["note"]
    assert (note["kind"], note["by"], note["reason"], note["revision"]) == (
        "rejected",
        JENS,
        reason,
        1,
    )
    (row,) = cli("list", "--json").json()["announcements"]
    assert row["note"]["reason"] == reason
    assert f"#{announcement} rejected by {JENS}: {reason}" in cli("list").stdout
    (overview,) = cli("status", "--json").json()["announcements"]
    assert overview["note"]["reason"] == reason


def test_a_cancellation_reason_shows_in_status_and_list(cli: Cli) -> None:
    announcement = draft(cli)
    result = cli("cancel", str(announcement), "--reason", "Dubblett av nummer 3")
    assert result.exit_code == 0
    assert "Dubblett av nummer 3" in cli("status", str(announcement)).stdout
    note = cli("status", str(announcement), "--json").json()["note"]
    assert (note["kind"], note["reason"]) == ("cancelled", "Dubblett av nummer 3")
    assert cli("list", "--json").json()["announcements"][0]["note"]["kind"] == "cancelled"
    too_long = cli("cancel", str(draft(cli)), "--reason", "x" * 501)
    assert too_long.exit_code == 2 and "at most 500" in too_long.stderr


def test_an_edit_says_it_voided_the_approvals_and_who_must_approve(cli: Cli) -> None:
    announcement = approved(cli)
    edited = cli("edit", str(announcement), "--body", "Koka vattnet i tio minuter.")
    assert edited.exit_code == 0
    out = " ".join(edited.stdout.split())
    assert f"Earlier approvals were voided by this edit (revision 1: {ANNA}, {JENS})" in out
    assert f"needs 2 approval(s) from: {JENS}, {ANNA}, {ANN}" in out
    note = cli("status", str(announcement), "--json").json()["note"]
    assert note["kind"] == "approvals_voided" and note["voided_approvals"] == [ANNA, JENS]
    assert "approvals were voided by this edit" in " ".join(
        cli("status", str(announcement)).stdout.split()
    )
    assert cli("list", "--json").json()["announcements"][0]["note"]["kind"] == "approvals_voided"
    again = cli("edit", str(announcement), "--title", "Tredje", "--json").json()
    assert again["approvals_voided"] is False  # a draft had nothing to void
    assert again["eligible_approvers"] == [JENS, ANNA, ANN] and again["required"] == 2


def test_an_edit_json_names_the_voided_approvals(cli: Cli) -> None:
    announcement = approved(cli)
    document = cli("edit", str(announcement), "--title", "Ny", "--json").json()
    assert document["approvals_voided"] is True
    assert document["voided_approvals"] == [ANNA, JENS]
    assert document["state"] == "draft" and document["revision"] == 2


# ---------------------------------------------------------------------------------------------
# 5. hash prefixes


def submitted(cli: Cli) -> tuple[int, str]:
    announcement = draft(cli)
    assert cli("submit", str(announcement)).exit_code == 0
    return announcement, content_hash(cli, announcement)


@pytest.mark.parametrize("length", [7, 12, 64])
def test_a_unique_prefix_of_the_hash_approves(cli: Cli, length: int) -> None:
    announcement, full = submitted(cli)
    result = cli("approve", str(announcement), "--as", ANNA, "--hash", full[:length].upper())
    assert result.exit_code == 0, result.stderr
    assert "1 of 2" in result.stdout


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("abc12", "first 7 or more hexadecimal characters"),
        ("xyz12345", "first 7 or more hexadecimal characters"),
        ("0000000", "no revision of announcement"),
    ],
)
def test_a_bad_or_unknown_hash_is_refused_showing_the_full_hash(
    cli: Cli, given: str, message: str
) -> None:
    announcement, full = submitted(cli)
    result = cli("approve", str(announcement), "--as", ANNA, "--hash", given)
    assert result.exit_code == 2
    stderr = " ".join(result.stderr.split())
    assert message in stderr and full in stderr.replace(" ", "")
    assert cli("status", str(announcement), "--json").json()["state"] == "pending_approval"


def test_a_hash_of_an_older_revision_is_refused_with_exit_1(cli: Cli) -> None:
    announcement, old = submitted(cli)
    cli("edit", str(announcement), "--title", "Ändrad rubrik")
    cli("submit", str(announcement))
    current = content_hash(cli, announcement)
    result = cli("reject", str(announcement), "--as", ANNA, "-r", "nej", "--hash", old[:8])
    assert result.exit_code == 1
    stderr = "".join(result.stderr.split())
    assert "changedsinceitwasshowntoyou" in stderr and current in stderr


def test_an_ambiguous_prefix_is_refused(cli: Cli) -> None:
    # Two texts whose content hashes share their first 7 characters (found by search once).
    bodies = ("Text 25375", "Text 27040")
    targets = ("web-borgholm", "web-morbylanga")
    hashes = [Content(title="Läget", body=b, targets=targets).content_hash() for b in bodies]
    prefix = hashes[0][:7]
    assert hashes[1].startswith(prefix) and hashes[0] != hashes[1]
    announcement = draft(cli, title="Läget", body=bodies[0])
    assert cli("edit", str(announcement), "--body", bodies[1]).exit_code == 0
    assert cli("submit", str(announcement)).exit_code == 0
    assert content_hash(cli, announcement) == hashes[1]
    result = cli("approve", str(announcement), "--as", ANNA, "--hash", prefix)
    assert result.exit_code == 2
    stderr = "".join(result.stderr.split())
    assert "ambiguous" in stderr and hashes[0] in stderr and hashes[1] in stderr
    longer = cli("approve", str(announcement), "--as", ANNA, "--hash", hashes[1][:9])
    assert longer.exit_code == 0, longer.stderr


def test_show_warns_when_the_stored_text_no_longer_matches_its_hash(
    cli: Cli, workspace_dir: Path
) -> None:
    import sqlite3
    from contextlib import closing

    announcement = approved(cli)
    # Someone changes the text behind broadcaster's back, in the database itself.
    with closing(sqlite3.connect(workspace_dir / "broadcaster.db")) as db, db:
        db.execute(
            "UPDATE revisions SET body = 'Ändrad' WHERE announcement_id = ?", (announcement,)
        )
    result = cli("show", str(announcement))
    assert "WARNING: the stored text does not match this hash" in " ".join(result.stdout.split())
    assert cli("show", str(announcement), "--json").json()["hash_verified"] is False
