"""Every command that takes --json prints exactly one JSON document, success or failure.

The commands are found by walking the Click tree of the real app, so a command that gains a
--json option without a case here fails :func:`test_every_json_command_has_a_case`. A case is
one line: the failing command line with its exit code, and a succeeding one. ``{draft}``,
``{submitted}``, ``{approved}`` and ``{dead}`` stand for an announcement (or for ``{dead}`` a
delivery) in that state; each is made only when a case asks for it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import typer

from broadcaster.cli import app
from tests.cli.test_deadletters_cli import dead_announcement
from tests.conftest import Cli, CliResult

APPROVERS = ("anna.hasselbom", "jens.odevall")

#: command: (failing command line, its exit code, succeeding command line); --json is added.
CASES: dict[str, tuple[str, int, str]] = {
    "init": ("init .", 2, "init elsewhere"),
    "check": ("--config nowhere.toml check", 2, "check"),
    "draft": ("draft --body text", 2, "draft -t Läget -b Text"),
    "edit": ("edit 999 -t Nytt", 2, "edit {draft} -t Nytt"),
    "list": ("list --state nonsense", 2, "list"),
    "preview": ("preview 999", 2, "preview {draft}"),
    "submit": ("submit 999", 2, "submit {draft}"),
    "approve": ("approve {draft} --as anna.hasselbom", 1, "approve {submitted} --as jens.odevall"),
    "reject": ("reject {submitted}", 2, "reject {submitted} -r Nej --as jens.odevall"),
    "cancel": ("cancel 999", 2, "cancel {draft}"),
    "send": ("send {draft}", 1, "send {approved}"),
    "unschedule": ("unschedule {approved}", 1, "unschedule {scheduled}"),
    "show": ("show 999", 2, "show {approved}"),
    "status": ("status 999", 2, "status {draft}"),
    "deadletters": ("deadletters --retry 999", 2, "deadletters --retry {dead}"),
    "audit": ("audit 999", 2, "audit {draft}"),
    "lists import": ("lists import boende missing.csv", 2, "lists import boende {csv}"),
    "lists show": ("lists show saknas", 2, "lists show"),
    "lists delete": ("lists delete saknas", 2, "lists delete {list}"),
    "lists purge-deliveries": (
        "lists purge-deliveries --older-than 30",
        2,
        "lists purge-deliveries --older-than 30d",
    ),
    "optout add": ("optout add 070-12", 2, "optout add 0701740605"),
    "optout remove": ("optout remove 0701740605", 2, "optout remove {optedout}"),
    "optout import": ("optout import missing.csv", 2, "optout import {csv}"),
}


def json_commands() -> Iterator[str]:
    """The path of every command in the app that has a --json option."""

    def walk(command: object, path: tuple[str, ...]) -> Iterator[str]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                yield from walk(sub, (*path, name))
        elif any("--json" in getattr(p, "opts", ()) for p in getattr(command, "params", ())):
            yield " ".join(path)

    yield from walk(typer.main.get_command(app), ())


def test_every_json_command_has_a_case() -> None:
    found = set(json_commands())
    assert found >= {"draft", "status", "approve", "submit", "send", "deadletters"}
    missing = sorted(found - set(CASES))
    assert not missing, f"commands with --json but no case in CASES: {missing}"
    assert not sorted(set(CASES) - found), "a case for a command that has no --json"


class World:
    """Announcements in the states the cases name, made on first use."""

    def __init__(self, cli: Cli, workspace_dir: Path) -> None:
        self.cli = cli
        self.workspace_dir = workspace_dir
        self.made: dict[str, str] = {}

    def fill(self, line: str) -> list[str]:
        words = shlex.split(line)
        return [self._value(word[1:-1]) if word.startswith("{") else word for word in words]

    def _value(self, name: str) -> str:
        if name not in self.made:
            self.made[name] = str(self._make[name](self))
        return self.made[name]

    def _draft(self) -> int:
        return int(self.cli("draft", "-t", "Läget", "-b", "Text", "--json").json()["id"])

    def _submitted(self) -> int:
        announcement = self._draft()
        assert self.cli("submit", str(announcement)).exit_code == 0
        return announcement

    def _approved(self) -> int:
        announcement = self._submitted()
        for person in APPROVERS:
            assert self.cli("approve", str(announcement), "--as", person).exit_code == 0
        return announcement

    def _scheduled(self) -> int:
        announcement = self._approved()
        assert self.cli("send", str(announcement), "--at", "+2h").exit_code == 0
        return announcement

    def _dead(self) -> int:
        announcement = dead_announcement(self.cli, self.workspace_dir)
        status = self.cli("status", str(announcement), "--json").json()
        return int(next(d["id"] for d in status["deliveries"] if d["state"] == "dead"))

    def _csv(self) -> str:
        (self.workspace_dir / "list.csv").write_text("0701740605;Anna;a|b\n", encoding="utf-8")
        return "list.csv"

    def _list(self) -> str:
        assert self.cli("lists", "import", "boende", self._csv()).exit_code == 0
        return "boende"

    def _optedout(self) -> str:
        assert self.cli("optout", "add", "0701740605").exit_code == 0
        return "0701740605"

    _make: ClassVar[dict[str, Callable[[World], int | str]]] = {
        "csv": _csv,
        "list": _list,
        "optedout": _optedout,
        "draft": _draft,
        "submitted": _submitted,
        "approved": _approved,
        "scheduled": _scheduled,
        "dead": _dead,
    }


def one_document(result: CliResult) -> object:
    """stdout holds exactly one JSON document and nothing else."""
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        pytest.fail(f"stdout is not one JSON document ({exc}):\n{result.stdout}\n{result.stderr}")


@pytest.mark.parametrize("command", sorted(CASES))
def test_failure_is_one_json_error_with_the_exit_code(
    command: str, cli: Cli, workspace_dir: Path
) -> None:
    failing, code, _ = CASES[command]
    result = cli(*World(cli, workspace_dir).fill(failing), "--json")
    assert result.exit_code == code, (result.stdout, result.stderr)
    document = one_document(result)
    assert isinstance(document, dict) and set(document) == {"error"}
    error = document["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", sorted(CASES))
def test_success_is_one_json_document(command: str, cli: Cli, workspace_dir: Path) -> None:
    _, _, succeeding = CASES[command]
    result = cli(*World(cli, workspace_dir).fill(succeeding), "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    document = one_document(result)
    assert isinstance(document, dict) and "error" not in document


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["status", "abc"], "Invalid value for 'ID'"),
        (["approve"], "Missing argument 'ID'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["list", "--colour", "red"], "No such option: --colour"),
        (["deadletters", "--retry", "x"], "Invalid value for '--retry'"),
    ],
)
def test_click_usage_errors_are_json_too(cli: Cli, args: list[str], words: str) -> None:
    result = cli(*args, "--json")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    document = one_document(result)
    assert isinstance(document, dict)
    assert document["error"]["code"] == "usage"
    assert words in document["error"]["message"]


def test_without_json_errors_stay_words_on_stderr(cli: Cli) -> None:
    for args in (["status", "abc"], ["status", "999"]):
        result = cli(*args)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert "{" not in result.stderr


def test_a_json_error_names_what_went_wrong(cli: Cli) -> None:
    document = one_document(cli("status", "999", "--json"))
    assert document == {
        "error": {
            "code": "not_found",
            "message": "there is no announcement 999 (see `broadcaster list`)",
            "details": [],
        }
    }


def test_a_config_error_lists_each_problem_in_details(cli: Cli, workspace_dir: Path) -> None:
    config = workspace_dir / "broadcaster.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('kommunkod = "0885"', 'kommunkod = "885"'),
        encoding="utf-8",
    )
    result = cli("list", "--json")
    assert result.exit_code == 2
    error = one_document(result)["error"]  # type: ignore[index]
    assert error["code"] == "config"
    assert any("kommunkod" in line for line in error["details"])


def test_a_failed_check_keeps_its_report_and_carries_the_error(
    cli: Cli, workspace_dir: Path
) -> None:
    override = workspace_dir / "templates" / "website" / "feed.atom"
    override.parent.mkdir(parents=True)
    override.write_text("{% if %}", encoding="utf-8")
    result = cli("check", "--json")
    assert result.exit_code == 2
    document = one_document(result)
    assert isinstance(document, dict) and document["ok"] is False
    assert document["error"]["code"] == "check_failed"
    assert document["error"]["details"] == document["problems"]
