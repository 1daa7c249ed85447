"""`broadcaster worker` as a long-running process: it works, and stops cleanly on a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_worker_delivers_then_stops_cleanly_on_a_signal(
    cli: Cli, workspace_dir: Path, signum: signal.Signals
) -> None:
    announcement = cli("draft", "-t", "Läget", "-b", "Text", "--json").json()["id"]
    cli("submit", str(announcement))
    cli("approve", str(announcement), "--as", "anna.hasselbom")
    cli("approve", str(announcement), "--as", "jens.odevall")
    cli("send", str(announcement))
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
