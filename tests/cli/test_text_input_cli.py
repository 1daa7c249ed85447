"""Text at the command line: body files in any common encoding, and no control characters
wherever they come from (an option, a file, standard input, the editor, a reason)."""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

import pytest

from broadcaster.cli.editor import edit_text
from broadcaster.errors import InputError
from tests.conftest import Cli

BODY = "Vattnet är tillbaka.\n\nKoka det ändå — i två dagar:\n\t- Borgholm\n\t- Köpingsvik"


def content_hash(cli: Cli, *args: str) -> str:
    result = cli("draft", "--title", "Vattnet", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return str(result.json()["content_hash"])


@pytest.mark.parametrize(
    "data",
    [
        codecs.BOM_UTF8 + BODY.encode("utf-8"),
        BODY.encode("utf-16"),
        codecs.BOM_UTF16_BE + BODY.encode("utf-16-be"),
        BODY.replace("\n", "\r\n").encode("utf-8"),
        codecs.BOM_UTF8 + BODY.replace("\n", "\r\n").encode("utf-8"),
    ],
    ids=["utf8-bom", "utf16", "utf16be", "crlf", "notepad"],
)
def test_a_body_file_reads_as_the_same_text_in_every_supported_form(
    cli: Cli, workspace_dir: Path, data: bytes
) -> None:
    (workspace_dir / "plain.md").write_bytes(BODY.encode("utf-8"))
    (workspace_dir / "other.md").write_bytes(data)
    # Same content hash: the BOM and the carriage returns are not part of the body.
    assert content_hash(cli, "--body-file", "other.md") == content_hash(
        cli, "--body-file", "plain.md"
    )


def test_standard_input_and_options_are_normalised_too(cli: Cli, workspace_dir: Path) -> None:
    (workspace_dir / "plain.md").write_bytes(BODY.encode("utf-8"))
    expected = content_hash(cli, "--body-file", "plain.md")
    result = cli("draft", "--title", "Vattnet", "-f", "-", "--json", input="\ufeff" + BODY)
    assert result.exit_code == 0, result.stderr
    assert result.json()["content_hash"] == expected
    assert content_hash(cli, "--body", BODY.replace("\n", "\r\n")) == expected


def test_a_latin1_body_file_is_refused_with_the_offset(cli: Cli, workspace_dir: Path) -> None:
    (workspace_dir / "ansi.md").write_bytes("Vattnet är tillbaka".encode("cp1252"))
    result = cli("draft", "--title", "Vattnet", "--body-file", "ansi.md")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "byte 8 (line 1, 0xE4) is not UTF-8" in message
    assert "save it as UTF-8" in message
    assert cli("list", "--json").json()["announcements"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--title", "Vatten\x01läcka", "--body", "Koka."], "U+0001"),
        (["--title", "Vatten\tläcka", "--body", "Koka."], "U+0009"),
        (["--title", "Vattnet", "--body", "Koka\x00 vattnet."], "U+0000"),
        (["--title", "Vattnet", "--body", "\x1b[2JKoka."], "U+001B"),
        (["--title", "Vattnet", "--body", "Koka.", "--link", "https://x.se/\x01"], "U+0001"),
        (["--title", "Vattnet", "--body", "Koka.", "--override", "teams=a\x02b"], "U+0002"),
        (["--title", "Vatten\udcffläcka", "--body", "Koka."], "not UTF-8"),
    ],
)
def test_control_characters_are_refused_in_every_field(
    cli: Cli, args: list[str], message: str
) -> None:
    result = cli("draft", *args)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert cli("list", "--json").json()["announcements"] == []


def test_control_characters_in_a_body_file_are_refused(cli: Cli, workspace_dir: Path) -> None:
    (workspace_dir / "bad.md").write_bytes(b"Rad ett\nRad \x07tv\xc3\xa5\n")
    result = cli("draft", "--title", "Vattnet", "--body-file", "bad.md")
    assert result.exit_code == 2
    assert "U+0007 at line 2, column 5" in result.stderr


def test_an_edit_and_a_reason_are_checked_the_same_way(cli: Cli) -> None:
    drafted = cli("draft", "--title", "Vattnet", "--body", "Koka.", "--json").json()
    number = str(drafted["id"])
    edited = cli("edit", number, "--title", "Vatten\x0bläcka")
    assert edited.exit_code == 2 and "U+000B" in edited.stderr
    assert cli("submit", number).exit_code == 0
    rejected = cli("reject", number, "--reason", "Fel\x08 datum", "--as", "anna.hasselbom")
    assert rejected.exit_code == 2 and "U+0008" in rejected.stderr
    assert cli("status", number, "--json").json()["state"] == "pending_approval"


def test_the_editor_may_save_utf16_with_a_bom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys\nopen(sys.argv[1], 'wb').write('Vattnet är tillbaka\\r\\n'.encode('utf-16'))\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("VISUAL", f"{sys.executable} {script}")
    assert edit_text("") == "Vattnet är tillbaka\n"


def test_an_editor_saving_latin1_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "editor.py"
    script.write_text("import sys\nopen(sys.argv[1], 'wb').write(b'V\\xe4rt')\n", encoding="utf-8")
    monkeypatch.setenv("VISUAL", f"{sys.executable} {script}")
    with pytest.raises(InputError, match=r"byte 1 \(line 1, 0xE4\) is not UTF-8"):
        edit_text("")


def test_a_configuration_saved_with_a_bom_loads(cli: Cli, workspace_dir: Path) -> None:
    config = workspace_dir / "broadcaster.toml"
    config.write_bytes(codecs.BOM_UTF8 + config.read_bytes())
    assert cli("list", "--json").exit_code == 0
