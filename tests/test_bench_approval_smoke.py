"""``bench/approval_latency.py`` runs end to end on tiny numbers (so it cannot rot): ``serve``
in its own process, the sandbox as Teams, clicks over HTTP, down to the RESULT line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench" / "approval_latency.py"
KEYS = {
    "approval_to_sent_ms",
    "approval_to_sent_max_ms",
    "invoke_p50_ms",
    "invoke_p99_ms",
    "invokes",
}


def test_approval_latency_runs_on_two_updates_and_ten_clicks() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "2", "--invokes", "10"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("RESULT ")
    result = dict(item.split("=", 1) for item in lines[-1].split()[1:])
    assert set(result) == KEYS
    assert result["invokes"] == "10"
    for key in KEYS:
        assert float(result[key]) > 0, key
    assert "crisis update 2: approval to sent " in done.stdout
