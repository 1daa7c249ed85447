"""`broadcaster check` says where approval cards go, who can click them, and what sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.approvals.conftest import AUTHOR, write_config
from tests.conftest import Cli


def checked(cli: Cli, sandbox: Any) -> tuple[int, str, dict[str, Any]]:
    cli.env.update(sandbox.env())
    text = cli("check")
    document = cli("check", "--json").json()
    return text.exit_code, " ".join(text.stdout.split()), document


def test_check_names_the_cards_channel_and_who_can_click(
    workspace_dir: Path, database_url: str, sandbox: Any, cli: Cli
) -> None:
    path = write_config(workspace_dir, database_url, send_on_approval=True)
    path.write_text(
        path.read_text("utf-8").replace(
            f'"{AUTHOR}" = "00000000-0000-0000-0000-0000000000aa"\n', ""
        ),
        "utf-8",
    )
    code, text, document = checked(cli, sandbox)
    assert code == 0, text
    assert "the last approval sends every update" in text
    assert "cards go to Teams channel 19:crisis-approvers@thread.tacv2" in text
    assert "3 of 4 approvers can decide there" in text
    assert f"({AUTHOR}: no Entra object id in [approval.identities]" in text
    assert document["ok"] is True


def test_check_refuses_a_cards_channel_without_a_bot(
    workspace_dir: Path, database_url: str, sandbox: Any, cli: Cli
) -> None:
    write_config(workspace_dir, database_url, teams=False)
    code, text, document = checked(cli, sandbox)
    assert code != 0 and "no approval card can be posted" in text
    [problem] = [p for p in document["problems"] if "teams_channel_id" in p]
    assert "there is no [teams_bot]" in problem and "add [teams_bot]" in problem


def test_two_approvers_with_one_entra_object_id_is_a_configuration_error(
    workspace_dir: Path, database_url: str, cli: Cli
) -> None:
    path = write_config(workspace_dir, database_url, teams=False, channel=False)
    path.write_text(path.read_text("utf-8").replace("-0000000000aa", "-000000000001"), "utf-8")
    result = cli("check", "--json")
    assert result.exit_code == 2
    message = " ".join(result.json()["error"]["details"])
    assert "jens.odevall, kommunikator share the Entra object id" in message
