"""The worker says who it is, logs in the workspace's time zone, and logs JSON for machines."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from broadcaster.app import App
from broadcaster.config import GeneralSettings
from broadcaster.worker_runtime import worker_identity, worker_options
from tests.cli.test_worker_cli import queued
from tests.conftest import Cli, replace_config

ZONED_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+05:30 (INFO|WARNING|ERROR) broadcaster\."
)


def in_zone(workspace_dir: Path, zone: str) -> None:
    config = workspace_dir / "broadcaster.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('"Europe/Stockholm"', f'"{zone}"'), encoding="utf-8")


def test_start_line_names_workspace_database_targets_and_limits(
    cli: Cli, workspace_dir: Path
) -> None:
    config = workspace_dir / "broadcaster.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'output_dir = "site/borgholm"', 'output_dir = "site/borgholm"\nrate_per_second = 0.5'
        ),
        encoding="utf-8",
    )
    result = cli("worker", "--until-idle")
    assert result.exit_code == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert "worker" in first and "started" in first
    assert f"workspace {workspace_dir.resolve()}" in first
    assert f"database sqlite:///{workspace_dir.resolve() / 'broadcaster.db'}" in first
    assert "web-borgholm, web-morbylanga" in first
    assert "max_in_flight 64" in first and "lease 300 s" in first
    assert "target:web-borgholm 0.5/s" in first
    assert "worker stopped after 0 job(s)" in result.stderr


def test_log_lines_carry_the_workspace_zone_and_offset(cli: Cli, workspace_dir: Path) -> None:
    in_zone(workspace_dir, "Asia/Kolkata")  # +05:30 all year: not the machine's zone by chance
    queued(cli, "Läget", "Text")
    result = cli("worker", "--until-idle")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) >= 2
    assert all(ZONED_LINE.match(line) for line in lines), lines


def test_json_logs_are_one_object_per_line(cli: Cli, workspace_dir: Path) -> None:
    in_zone(workspace_dir, "Asia/Kolkata")
    queued(cli, "Läget", "Text")
    result = cli("worker", "--until-idle", "--json-logs")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    start, stop = records[0], records[-1]
    assert start["level"] == "info" and "started" in start["message"]
    assert start["worker"]["targets"] == ["web-borgholm", "web-morbylanga"]
    assert start["worker"]["max_in_flight"] == 64
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30$", start["time"])
    assert stop["jobs"] == 2
    assert result.stdout == ""


def test_the_database_password_is_never_shown(app: App) -> None:
    url = "postgresql+psycopg://broadcaster:hemligt-losen@db.example.se:5432/kris"
    replace_config(app, broadcaster=GeneralSettings(database_url=url))
    options = worker_options(app)
    identity = worker_identity(app, options, "w1")
    assert "hemligt" not in json.dumps(identity)
    assert identity["database"] == "postgresql+psycopg://broadcaster:***@db.example.se:5432/kris"
    assert identity["lease_seconds"] == options.lease / timedelta(seconds=1)
