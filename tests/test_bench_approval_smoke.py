"""``bench/approval_latency.py`` runs end to end on tiny numbers, so that it cannot rot between
the times someone runs ``make bench``: the sandbox acting as Teams, ``broadcaster serve`` in its
own process with its worker, approvals by card clicks, down to the RESULT line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench_run import run_bench

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench" / "approval_latency.py"
KEYS = {
    "announcements",
    "latency_median_ms",
    "latency_max_ms",
    "latency_first_ms",
    "invokes",
    "invoke_p50_ms",
    "invoke_p99_ms",
    "decision_p50_ms",
    "decision_max_ms",
}


def test_approval_latency_runs_on_two_announcements_and_ten_invokes() -> None:
    result = run_bench(BENCH.name, "--announcements", "2", "--invokes", "10").result
    assert set(result) == KEYS
    assert (result["announcements"], result["invokes"]) == ("2", "10")
    for key in KEYS:
        assert float(result[key]) > 0, key


def test_bad_arguments_are_refused_with_usage() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--announcements", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--announcements must be at least 2" in done.stderr
