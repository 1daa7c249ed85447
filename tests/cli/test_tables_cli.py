"""Tables fit 80 columns without cutting ids or states; --wide shows everything."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.cells import cell_len

from tests.conftest import Cli

LONG_TITLE = (
    "Vattenläcka i Borgholm: koka allt dricksvatten i Köpingsvik, Löttorp och Byxelkrok "
    "tills vidare, och spara inget vatten i öppna kärl"
)
TARGETS = [f"web-borgholm-skola-nummer-{n:02d}" for n in range(1, 13)]


@pytest.fixture
def crowded(cli: Cli, workspace_dir: Path) -> Cli:
    """Twelve more targets with long ids; the CLI at 80 columns."""
    config = workspace_dir / "broadcaster.toml"
    extra = "".join(
        f'\n[[targets]]\nid = "{target}"\nchannel = "website"\norganisation = "borgholm"\n'
        f'mode = "static"\noutput_dir = "site/{target}"\n'
        for target in TARGETS
    )
    config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return Cli(cwd=cli.cwd, env={**cli.env, "COLUMNS": "80"})


def sent(cli: Cli) -> int:
    announcement = int(cli("draft", "-t", LONG_TITLE, "-b", "Text", "--json").json()["id"])
    cli("submit", str(announcement))
    for person in ("anna.hasselbom", "jens.odevall"):
        cli("approve", str(announcement), "--as", person)
    assert cli("send", str(announcement)).exit_code == 0
    assert cli("worker", "--until-idle").exit_code == 0
    return announcement


def assert_fits(text: str, width: int = 80) -> None:
    wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not wide, "lines wider than 80 columns:\n" + "\n".join(wide)


def test_list_fits_and_keeps_id_and_state(crowded: Cli) -> None:
    draft = int(crowded("draft", "-t", LONG_TITLE, "-b", "Text", "--json").json()["id"])
    result = crowded("list")
    assert result.exit_code == 0, result.stderr
    assert_fits(result.stdout)
    assert re.search(rf"^{draft}\s+draft\s+1\s", result.stdout, re.MULTILINE), result.stdout
    assert "Vattenläcka i" in result.stdout and "…" in result.stdout  # abbreviated, not cut off


def test_list_wide_shows_everything(crowded: Cli) -> None:
    crowded("draft", "-t", LONG_TITLE, "-b", "Text")
    result = crowded("list", "--wide")
    assert result.exit_code == 0, result.stderr
    assert LONG_TITLE in result.stdout
    assert all(target in result.stdout for target in TARGETS)


def test_status_and_overview_fit(crowded: Cli) -> None:
    announcement = sent(crowded)
    overview = crowded("status")
    assert_fits(overview.stdout)
    assert re.search(rf"^{announcement}\s+sent\s", overview.stdout, re.MULTILINE)
    detail = crowded("status", str(announcement))
    assert detail.exit_code == 0, detail.stderr
    assert_fits(detail.stdout)
    assert detail.stdout.startswith(f"#{announcement} Vattenläcka")
    states = re.findall(r"^\S+\s+\S+\s+(sent|dead)\s", detail.stdout, re.MULTILINE)
    assert len(states) == len(TARGETS) + 2, detail.stdout  # every target's row has its state
    # Target ids differ at their end: abbreviated in the middle, each row still says which.
    assert re.search(r"^web-borgholm\S*…\S*nummer-07 ", detail.stdout, re.MULTILINE)
    wide = crowded("status", str(announcement), "--wide")
    assert f"#{announcement} {LONG_TITLE} — sent (revision 1)" in wide.stdout
    assert all(target in wide.stdout for target in TARGETS)


def test_audit_and_deadletters_fit(crowded: Cli, workspace_dir: Path) -> None:
    (workspace_dir / "site").mkdir(exist_ok=True)
    (workspace_dir / "site" / TARGETS[0]).write_text("not a folder")
    config = workspace_dir / "broadcaster.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[approval]", "[channels.website]\nmax_attempts = 1\n\n[approval]", 1
        ),
        encoding="utf-8",
    )
    announcement = sent(crowded)
    audit = crowded("audit", str(announcement))
    assert audit.exit_code == 0, audit.stderr
    assert_fits(audit.stdout)
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d\s+kommunikator\s+drafted\s", audit.stdout, re.M)
    dead = crowded("deadletters")
    assert dead.exit_code == 0, dead.stderr
    assert_fits(dead.stdout)
    (row,) = crowded("deadletters", "--json").json()["deadletters"]
    assert re.search(rf"^{row['id']}\s+#{announcement} Vatten", dead.stdout, re.MULTILINE)
    wide = crowded("deadletters", "--wide")
    assert " ".join(row["last_error"].split()) in wide.stdout
