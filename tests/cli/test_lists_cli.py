"""``broadcaster lists`` and ``optout`` as a person types them; no number is ever shown whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Cli, CliResult

# Numbers from the range PTS keeps for fiction, written as people write them.
CSV = (
    "nummer;namn;taggar\n"
    "070-174 06 05;Anna Åberg;hemtjänst|skola\n"
    "+45 20 12 34 56;Lars;\n"
    "070-174 06;Kort;\n"
    "0701740606;;akut\n"
    "+46 70 174 06 05;;akut\n"
    "0701740607;Optad;\n"
)
#: What would give a number away: a run of its digits, in any of the forms above.
LEAKS = re.compile(r"17406|174[ -]06|201234|20 12 34|\+4670\d")


def no_leaks(result: CliResult) -> CliResult:
    output = result.stdout + result.stderr
    assert not LEAKS.search(output), output
    return result


@pytest.fixture
def csv_file(workspace_dir: Path) -> Path:
    path = workspace_dir / "boende.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.encode("utf-8"))
    return path


def test_import_reports_counts_and_masked_bad_lines(cli: Cli, csv_file: Path) -> None:
    assert no_leaks(cli("optout", "add", "070-174 06 07")).exit_code == 0
    result = no_leaks(cli("lists", "import", "boende", csv_file.name))
    assert result.exit_code == 0, result.stderr
    assert "Imported list boende: 4 number(s), 1 duplicate(s) merged" in result.stdout
    assert "1 of them opted out, 1 line(s) skipped" in result.stdout
    assert "line 4:" in result.stdout
    report = no_leaks(cli("lists", "import", "boende", csv_file.name, "--replace", "--json")).json()
    assert report["replaced"] is True and report["imported"] == 4
    assert [line["line"] for line in report["skipped"]] == [4]
    shown = no_leaks(cli("lists", "show", "--json")).json()["lists"]
    assert [(s["name"], s["recipients"], s["opted_out"]) for s in shown] == [("boende", 3, 1)]
    text = no_leaks(cli("lists", "show", "boende")).stdout
    assert "boende: 3 recipient(s), 4 member(s), 1 opted out" in text
    assert "akut: 2" in text


def test_a_second_import_without_replace_is_refused(cli: Cli, csv_file: Path) -> None:
    assert cli("lists", "import", "boende", csv_file.name).exit_code == 0
    result = no_leaks(cli("lists", "import", "boende", csv_file.name))
    assert result.exit_code == 1
    assert "--replace" in result.stderr


def test_a_file_without_valid_rows_stores_nothing(cli: Cli, workspace_dir: Path) -> None:
    (workspace_dir / "bad.csv").write_text("number\n070-174\nabc\n", encoding="utf-8")
    result = no_leaks(cli("lists", "import", "boende", "bad.csv"))
    assert result.exit_code == 2
    assert "no valid phone number" in result.stderr
    assert cli("lists", "show", "--json").json() == {"lists": []}


def test_delete_and_opt_out_commands(cli: Cli, csv_file: Path, workspace_dir: Path) -> None:
    assert cli("lists", "import", "boende", csv_file.name).exit_code == 0
    (workspace_dir / "stop.csv").write_text("0701740605\n0701740606\nx1\n", encoding="utf-8")
    report = no_leaks(cli("optout", "import", "stop.csv", "--json")).json()
    assert (report["added"], report["already"]) == (2, 0)
    assert no_leaks(cli("optout", "import", "stop.csv")).exit_code == 0
    assert cli("lists", "show", "boende", "--json").json()["lists"][0]["recipients"] == 2
    removed = no_leaks(cli("optout", "remove", "+46701740605", "--json")).json()
    assert removed == {"number": "+46 70 *** ** 05", "opted_out": False}
    assert no_leaks(cli("optout", "remove", "0701740606")).exit_code == 0
    assert no_leaks(cli("optout", "add", "0701740606")).exit_code == 0
    deleted = no_leaks(cli("lists", "delete", "boende"))
    assert deleted.exit_code == 0 and "4 member(s)" in deleted.stdout
    assert no_leaks(cli("lists", "show")).stdout.startswith("No lists yet")
    assert no_leaks(cli("audit")).exit_code == 0
