"""Hostile input at the command line: every odd value gets a clear error and exit 2.

One table, each row as a person (or a script gone wrong) might type it. None may end in a
traceback, none may be accepted, and nothing may be stored.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli

HUGE_ID = "99999999999999999999"  # beyond 64 bits
# (arguments, a fragment of the error). {folder}, {ansi} and {workspace} are files set up below.
CASES: list[tuple[list[str], str]] = [
    # Ids: one parameter type for every command that takes one.
    (["status", HUGE_ID], "is not an id"),
    (["audit", HUGE_ID], "is not an id"),
    (["deadletters", "--retry", HUGE_ID], "is not an id"),
    (["deadletters", "--retry", "0"], "is not an id"),
    (["preview", HUGE_ID], "is not an id"),
    (["edit", HUGE_ID, "--title", "x"], "is not an id"),
    (["approve", "18446744073709551616"], "is not an id"),
    (["reject", HUGE_ID, "--reason", "nej"], "is not an id"),
    (["send", HUGE_ID], "is not an id"),
    (["unschedule", HUGE_ID], "is not an id"),
    (["cancel", HUGE_ID], "is not an id"),
    (["show", HUGE_ID], "is not an id"),
    (["show", "1", "--revision", HUGE_ID], "Invalid value for '--revision'"),
    (["submit", "0"], "is not an id"),
    (["status", "-1"], "No such option"),
    (["status", "1e3"], "is not an id"),
    (["status", " "], "is not an id"),
    (["status", "\u0663"], "is not an id"),  # an Arabic-Indic three: a digit, but not ours
    (["status", "9" * 5000], "is not an id"),
    (["status", "42"], "there is no announcement 42"),
    # Ports.
    (["sandbox", "--port", "99999"], "Invalid value for '--port'"),
    (["sandbox", "--port", "-1"], "Invalid value for '--port'"),
    (["sandbox", "--port", "http"], "Invalid value for '--port'"),
    (["sandbox", "--env-file", "{folder}"], "give a file in an existing folder"),
    (["sandbox", "--env-file", "nowhere/sandbox.env"], "give a file in an existing folder"),
    # Times for send --at.
    (["send", "1", "--at", "+99999999999d"], "outside the calendar"),
    (["send", "1", "--at", "0001-01-01T00:00"], "outside the calendar"),
    (["send", "1", "--at", "9999-12-31T23:59"], "more than a year ahead"),
    (["send", "1", "--at", "2020-01-01 12:00"], "is in the past: it is now"),
    (["send", "1", "--at", ""], "is not a time"),
    (["send", "1", "--at", "25:61"], "is not a time"),
    (["send", "1", "--at", "2026-13-01 10:00"], "is not a time"),
    (["send", "1", "--at", "+1h", "--cancel"], "not both"),
    # What a draft says.
    (["draft", "--title", "T", "--body", "B", "--language", "../.."], "is not a language code"),
    (["draft", "--title", "T", "--body", "B", "--language", "sv_SE"], "is not a language code"),
    (["draft", "--title", "", "--body", "B"], "the title is empty"),
    (["draft", "--title", "   ", "--body", "B"], "the title is empty"),
    (["draft", "--title", "T" * 10_000, "--body", "B"], "at most 200 characters"),
    (["draft", "--title", "T", "--body", ""], "the body is empty"),
    (["draft", "--title", "T", "--body", "B" * 20_001], "at most 20000"),
    (["draft", "--title", "T\x01", "--body", "B"], "U+0001"),
    (["draft", "--title", "T", "--body", "B", "--body-file", "{ansi}"], "not both"),
    (["draft", "--title", "T", "--body-file", "{folder}"], "is a folder"),
    (["draft", "--title", "T", "--body-file", "missing.md"], "cannot read it"),
    (["draft", "--title", "T", "--body-file", "{ansi}"], "is not UTF-8"),
    (["draft", "--title", "T", "--body", "B", "--to", "nowhere"], "nowhere"),
    (["draft", "--title", "T", "--body", "B", "--severity", "apocalyptic"], "apocalyptic"),
    (["draft", "--title", "T", "--body", "B", "--link", "javascript:alert(1)"], "http(s)"),
    (["draft", "--title", "T", "--body", "B", "--override", "fax=x"], "unknown channel"),
    (["draft", "--title", "T", "--body", "B", "--override", "sms"], "CHANNEL=TEXT"),
    # Decisions and lists.
    (["reject", "1", "--reason", "", "--as", "anna.hasselbom"], "--reason is required"),
    (["reject", "1", "--reason", "Nej\x07", "--as", "anna.hasselbom"], "U+0007"),
    (["cancel", "1", "--reason", "Nej\x1b[2J"], "U+001B"),
    (["list", "--state", "bogus"], "bogus"),
    # The workspace itself.
    (["--config", "missing.toml", "list"], "no configuration file"),
    (["--config", "{folder}", "list"], "{folder}"),
    (["init", "ansi.md"], "exists and is not a folder"),
    (["init", "ansi.md/krisinfo"], "cannot create a workspace"),
    (["draft", "--title", "T", "--body", "B", "--link", "https://ex ample.se"], "http(s)"),
    (["send", "1", "--at", "2026-03-29 02:30"], "does not exist in Europe/Stockholm"),
    # Recipient lists and opt-outs (numbers in errors are masked).
    (["lists", "import", "boende", "missing.csv"], "missing or not a regular file"),
    (["lists", "import", "boende", "{folder}"], "is a folder"),
    (["lists", "import", "boende", "{ansi}"], "is not UTF-8"),
    (["lists", "import", "../..", "{ansi}"], "is not a list name"),
    (["lists", "import", "b" * 65, "{ansi}"], "is not a list name"),
    (["lists", "import", "boende", "{ansi}", "--organisation", "atlantis"], "atlantis"),
    (["lists", "show", "okänd"], "is not a list name"),
    (["lists", "show", "saknas"], "there is no list 'saknas'"),
    (["lists", "delete", "saknas"], "there is no list 'saknas'"),
    (["optout", "add", "abc"], "is not a phone number"),
    (["optout", "add", "070-12"], "****12 is not a valid phone number"),
    (["optout", "add", "+4670174060" + "5" * 40], "is not a phone number"),
    (["optout", "remove", "0701740605"], "+46 70 *** ** 05 is not on the opt-out list"),
    (["optout", "import", "{ansi}"], "is not UTF-8"),
]
if sys.platform != "win32":
    CASES.append((["draft", "--title", "T", "--body-file", "/dev/zero"], "larger than"))
    CASES.append((["lists", "import", "boende", "/dev/zero"], "not a regular file"))


@pytest.fixture
def hostile(workspace_dir: Path) -> tuple[Cli, dict[str, str]]:
    """A workspace of its own for each row (a row wrongly accepted must not spoil the next),
    with announcement 1 waiting for approval."""
    (workspace_dir / "folder").mkdir()
    (workspace_dir / "ansi.md").write_bytes("Vattnet är tillbaka".encode("cp1252"))
    cli = Cli(cwd=workspace_dir, env={"BROADCASTER_USER": "kommunikator", "COLUMNS": "200"})
    assert cli("draft", "--title", "Vattnet", "--body", "Koka.").exit_code == 0
    assert cli("submit", "1").exit_code == 0
    places = {"folder": str(workspace_dir / "folder"), "ansi": "ansi.md"}
    return cli, places


@pytest.mark.parametrize(("args", "fragment"), CASES, ids=[" ".join(a)[:40] for a, _ in CASES])
def test_hostile_input_is_refused_clearly(
    hostile: tuple[Cli, dict[str, str]], args: list[str], fragment: str
) -> None:
    cli, places = hostile
    typed = [arg.format(**places) if "{" in arg else arg for arg in args]
    result = cli(*typed)
    output = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    assert result.exit_code == 2, output
    # Usage errors come in a box; compare the words, not the frame around them.
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())
    assert fragment.format(**places) in words
    # Nothing was stored: still the one announcement, still waiting for approval.
    listed = cli("list", "--json").json()["announcements"]
    assert [(a["id"], a["state"]) for a in listed] == [(1, "pending_approval")]


def test_every_command_that_takes_an_id_is_in_the_table() -> None:
    from broadcaster.cli import app

    covered = {args[0] for args, fragment in CASES if fragment == "is not an id"}
    takes_id = {
        command.name or command.callback.__name__
        for command in app.registered_commands
        if command.callback is not None
        and "announcement_id" in command.callback.__code__.co_varnames
    }
    missing = takes_id - covered
    assert not missing, f"add a row with a 64-bit overflow for: {', '.join(sorted(missing))}"
