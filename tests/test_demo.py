"""`broadcaster demo`: the tour a newcomer runs first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import feedparser
import pytest

from broadcaster.app import open_app
from broadcaster.cli.demo_run import run_demo
from broadcaster.errors import BroadcastError
from broadcaster.sandbox import APPROVER_OBJECT_IDS, TEAMS_CHANNEL_IDS
from broadcaster.store.announcements import get_announcement
from broadcaster.store.approval_cards import card_of
from broadcaster.store.approvals import decisions_for
from broadcaster.store.audit import list_events
from broadcaster.workspace import load_workspace
from tests.conftest import Cli

APPROVERS_CHANNEL = TEAMS_CHANNEL_IDS[0]
#: As the reference configuration (examples/broadcaster.toml) maps them.
ANNA_OBJECT_ID = APPROVER_OBJECT_IDS[1]
STRANGER_ID = "00000000-0000-0000-0000-0000000000ff"


def test_demo_sends_the_seed_update_and_leaves_the_pages(tmp_path: Path) -> None:
    result = Cli(cwd=tmp_path, env={})("demo", "--dir", "tour", "--wide")
    assert result.exit_code == 0, result.stderr
    root = (tmp_path / "tour").resolve()
    for org in ("borgholm", "morbylanga"):
        page = root / "site" / org / "index.html"
        assert str(page) in result.stdout.replace("\n", "")
        assert "Dataintrång hos Borgholms och Mörbylånga kommuner" in page.read_text(
            encoding="utf-8"
        )
        feed = feedparser.parse((root / "site" / org / "feed.atom").read_bytes())
        assert not feed.bozo and len(feed.entries) == 1
    assert "anna.hasselbom approved" in result.stdout and "jens.odevall approved" in result.stdout
    status = Cli(cwd=root, env={})("status", "1", "--json").json()
    assert status["state"] == "sent"
    assert {d["state"] for d in status["deliveries"]} == {"sent"}
    static_sites = {"web-borgholm", "web-morbylanga"}
    assert static_sites | {"cms-morbylanga"} <= {d["target"] for d in status["deliveries"]}
    # Every channel that needs an account (the CMS too) went to the sandbox, once, and the
    # table says so.
    for delivery in status["deliveries"]:
        if delivery["target"] not in static_sites:
            row = next(
                line for line in result.stdout.splitlines() if line.startswith(delivery["target"])
            )
            if delivery["channel"] == "sms":  # one text per number of the list
                sent = status["lists"][delivery["target"]]["sent"]
                assert sent > 0 and f"{sent} SMS accepted" in row, row
            else:
                assert "1 post(s) accepted" in row, row
    assert oct((root / ".env").stat().st_mode & 0o777) == "0o600"
    # The approvers' channel got the card, and the table says so.
    row = next(line for line in result.stdout.splitlines() if line.startswith("approvers' card"))
    assert "teams" in row and "posted" in row and "1 card" in row, row


def test_demo_approves_once_in_teams_and_once_at_the_cli(tmp_path: Path) -> None:
    """The card is posted, clicked over HTTP (a verified token) as one approver, the other
    approves at the CLI, and that last approval sends it; the card ends up saying so."""
    result = Cli(cwd=tmp_path, env={})("demo", "--dir", "tour")
    assert result.exit_code == 0, result.stderr
    said = result.stdout.replace("\n", " ")
    assert (
        "anna.hasselbom approved in Teams: clicked Approve on the card the bot posted in the "
        "approvers' channel" in said
    )
    assert "serve verified the click's Bot Framework token" in said
    assert "Waiting: 1 of 2 approvals: anna.hasselbom" in said  # the card serve answered with
    assert "jens.odevall approved revision 1 at the command line" in said
    assert "Approved (2 of 2): anna.hasselbom" in said and "(cli). Sent." in said
    workspace = load_workspace((tmp_path / "tour" / "broadcaster.toml").resolve(), {})
    assert workspace.config.approval.teams_channel_id == APPROVERS_CHANNEL
    assert workspace.config.approval.identities["anna.hasselbom"] == ANNA_OBJECT_ID
    app = open_app(workspace)
    try:
        with app.store.read() as conn:
            announcement = get_announcement(conn, 1)
            card = card_of(conn, 1)
            decisions = decisions_for(conn, announcement.revision.id)
            events = list_events(conn, 1)
    finally:
        app.close()
    assert announcement.state == "sent"
    assert card is not None and card.posted
    assert card.conversation_id is not None and card.conversation_id.startswith(APPROVERS_CHANNEL)
    teams, cli = decisions
    assert (teams.person, teams.decision, teams.via) == ("anna.hasselbom", "approve", "teams")
    assert teams.proof == {"method": "teams", "aad_object_id": ANNA_OBJECT_ID,
                           "client_ip": "127.0.0.1"}  # fmt: skip
    assert (cli.person, cli.decision, cli.via) == ("jens.odevall", "approve", "cli")
    assert cli.proof is not None and cli.proof["method"] == "trusted_name"
    # The last approval sent it, once: no one ran `send`.
    [dispatched] = [e for e in events if e.action == "dispatched"]
    assert dispatched.actor == "jens.odevall"


class ImpostorTeams:
    """The sandbox's Teams, but whoever is said to click, a stranger's Entra object id does."""

    def __init__(self, sandbox: Any) -> None:
        self._sandbox = sandbox

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sandbox, name)

    @property
    def teams(self) -> Any:
        sandbox = self._sandbox

        class Clicker:
            def click(self, bot_url: str, **invoke: Any) -> Any:
                return sandbox.teams.click(bot_url, **{**invoke, "user_object_id": STRANGER_ID})

        return Clicker()


def test_a_refused_click_stops_the_demo_with_the_cards_refusal(
    tmp_path: Path, sandbox: Any
) -> None:
    lines: list[str] = []
    with pytest.raises(BroadcastError) as refused:
        run_demo(tmp_path / "tour", {}, lines.append, ImpostorTeams(sandbox))
    message = str(refused.value)
    assert "serve refused anna.hasselbom's click on the approval card" in message
    assert "is not in [approval.identities]" in message  # what the card said
    assert "broadcaster audit" in message  # what to do next
    assert not any("approved in Teams" in line for line in lines)
    # Nothing was approved, and serve stopped: the workspace is left as the click found it.
    app = open_app(load_workspace((tmp_path / "tour" / "broadcaster.toml").resolve(), {}))
    try:
        with app.store.read() as conn:
            announcement = get_announcement(conn, 1)
            assert decisions_for(conn, announcement.revision.id) == []
    finally:
        app.close()
    assert announcement.state == "pending_approval"


def test_demo_without_dir_keeps_a_new_temporary_folder(tmp_path: Path) -> None:
    # A subprocess, because the tempfile module caches the temporary folder per process.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "broadcaster", "demo"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("broadcaster-demo-")]
    assert (folder / "site" / "borgholm" / "index.html").is_file()


def test_the_try_line_works_pasted_into_a_fresh_shell(tmp_path: Path) -> None:
    """After `make demo` the virtual environment is not activated: the line must still work."""
    bin_dir = Path(sys.executable).parent
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != bin_dir
    )
    env = {"PATH": path, "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    folder = tmp_path / "demo with space"
    demo = subprocess.run(
        [str(bin_dir / "broadcaster"), "demo", "--dir", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    [line] = [line for line in demo.stdout.splitlines() if line.startswith("Try: ")]
    pasted = subprocess.run(
        ["bash", "-e", "-c", line.removeprefix("Try: ")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert pasted.returncode == 0, pasted.stderr
    assert "sent" in pasted.stdout and "approved" in pasted.stdout  # status, then audit
