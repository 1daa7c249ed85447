"""Bad input at the command line: exit 2, a clear message, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli

PYTHON = sys.executable


def test_broken_config_is_exit_2_with_one_line_per_problem(cli: Cli, workspace_dir: Path) -> None:
    config = workspace_dir / "broadcaster.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('kommunkod = "0885"', 'kommunkod = "885"').replace(
            'output_dir = "site/borgholm"', 'output_dir = "site/borgholm"\ncolour = "red"'
        ),
        encoding="utf-8",
    )
    result = cli("list")
    assert result.exit_code == 2
    assert "the configuration has problems" in result.stderr
    assert (
        "organisations[0] (borgholm).kommunkod: must be the four-digit SCB kommunkod"
        in result.stderr
    )
    assert "targets[0] (web-borgholm).colour: unknown key" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workspace_dir / "broadcaster.db").exists()  # nothing was opened or created


def test_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    result = Cli(cwd=tmp_path, env={})("list")
    assert result.exit_code == 2
    assert "no configuration file here" in result.stderr and "broadcaster init" in result.stderr


def test_config_from_option_and_environment(cli: Cli, workspace_dir: Path, tmp_path: Path) -> None:
    elsewhere = Cli(cwd=tmp_path, env={})
    assert elsewhere("--config", str(workspace_dir / "broadcaster.toml"), "list").exit_code == 0
    via_env = Cli(cwd=tmp_path, env={"BROADCASTER_CONFIG": str(workspace_dir / "broadcaster.toml")})
    assert via_env("list").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "99"], "there is no announcement 99"),
        (["approve", "99", "--as", "anna.hasselbom"], "there is no announcement 99"),
        (["draft", "--body", "x"], "--title is required"),
        (["draft", "-t", "x", "-b", "y", "--to", "fax"], "--to fax: no target or group"),
        (["draft", "-t", "x", "-b", "y", "--link", "ftp://x"], "is not an http(s) address"),
        (["draft", "-t", "x", "-b", "y", "--override", "sms"], "write CHANNEL=TEXT"),
        (["draft", "-t", "x", "--body-file", "missing.md"], "cannot read it"),
        (["draft", "-t", "x", "-b", "y", "--body-file", "z"], "not both"),
        (["send", "1", "--at", "tomorrow-ish"], "is not a time"),
        (["draft", "-t", "x", "-b", "y", "--severity", "apocalypse"], "Usage:"),
        (["status", "abc"], "Usage:"),
    ],
)
def test_bad_input_is_exit_2(cli: Cli, args: list[str], message: str) -> None:
    if args[0] == "send":
        cli("draft", "-t", "x", "-b", "y")
    result = cli(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_draft_without_body_on_a_pipe_is_refused(cli: Cli) -> None:
    result = cli("draft", "-t", "x", input="")
    assert result.exit_code == 2
    assert "give the text with --body or --body-file" in result.stderr


def test_init_refuses_to_overwrite(cli: Cli, workspace_dir: Path, tmp_path: Path) -> None:
    before = (workspace_dir / "broadcaster.toml").read_bytes()
    result = Cli(cwd=tmp_path, env={})("init", str(workspace_dir))
    assert result.exit_code == 2 and "already holds" in result.stderr
    assert (workspace_dir / "broadcaster.toml").read_bytes() == before


def test_init_then_check_is_clean(tmp_path: Path) -> None:
    runner = Cli(cwd=tmp_path, env={})
    assert runner("init", "w").exit_code == 0
    assert (tmp_path / "w" / ".env").stat().st_mode & 0o077 == 0  # secrets file is private
    checked = Cli(cwd=tmp_path / "w", env={})("check", "--json")
    assert checked.exit_code == 0, checked.stdout
    report = checked.json()
    assert report["ok"] is True and report["problems"] == []
    assert any("web-borgholm (website): a sample renders" in line for line in report["checked"])


def test_check_reports_template_and_channel_problems(tmp_path: Path) -> None:
    Cli(cwd=tmp_path, env={})("init", "w")
    override = tmp_path / "w" / "templates" / "website" / "feed.atom"
    override.parent.mkdir(parents=True)
    override.write_text("{% if %}", encoding="utf-8")
    result = Cli(cwd=tmp_path / "w", env={})("check")
    assert result.exit_code == 2
    assert f"template {override}, line 1" in result.stdout.replace("\n", "")


def test_help_and_version_need_no_workspace(tmp_path: Path) -> None:
    runner = Cli(cwd=tmp_path, env={})
    assert runner("--help").exit_code == 0
    assert "broadcaster" in runner("--version").stdout
    assert runner("draft", "--help").exit_code == 0


def test_cli_start_up_imports_no_platform_sdk_or_database_layer() -> None:
    """`broadcaster --help` must stay fast: heavy libraries are imported only when used."""
    heavy = ["facebook", "twilio", "telegram", "msal", "sqlalchemy", "jinja2", "alembic", "httpx"]
    code = (
        "import sys; from broadcaster.cli import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['--help'])\n"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_works(workspace_dir: Path) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "broadcaster", "list", "--json"],
        cwd=workspace_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{")
