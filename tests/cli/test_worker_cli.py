"""Long-running commands as processes: `worker` and `status --follow`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli


def queued(cli: Cli, title: str, body: str) -> int:
    """An announcement drafted, approved by two people and sent: its jobs wait for a worker."""
    announcement: int = cli("draft", "-t", title, "-b", body, "--json").json()["id"]
    for step in (
        ("submit",),
        ("approve", "--as", "anna.hasselbom"),
        ("approve", "--as", "jens.odevall"),
        ("send",),
    ):
        assert cli(step[0], str(announcement), *step[1:]).exit_code == 0, step
    return announcement


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_worker_delivers_then_stops_cleanly_on_a_signal(
    cli: Cli, workspace_dir: Path, signum: signal.Signals
) -> None:
    announcement = queued(cli, "Läget", "Text")
    process = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "worker"],
        cwd=workspace_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while cli("status", str(announcement), "--json").json()["state"] != "sent":
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the worker did not deliver"
            time.sleep(0.1)
    finally:
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "worker stopped after 2 job(s)" in stderr
    assert "Traceback" not in stderr


def test_status_follow_keeps_watching_until_delivery_is_finished(
    cli: Cli, workspace_dir: Path
) -> None:
    announcement = queued(cli, "Vattnet", "Koka vattnet")
    follower = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "status", str(announcement), "--follow"],
        cwd=workspace_dir,
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # long enough for it to have drawn the table at least once
        assert follower.poll() is None, "it stopped while delivery had not started"
        assert cli("worker", "--until-idle").exit_code == 0
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, stderr
    assert f"#{announcement} Vattnet — sent" in stdout  # the last picture is the finished one
    assert "web-borgholm" in stdout
    assert "web-morbylanga" in stdout
