"""Running a benchmark of ``bench/`` as ``make bench`` does, and reading its RESULT line."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


@dataclass(frozen=True)
class BenchRun:
    """What one run printed, and its RESULT line as key -> value."""

    stdout: str
    stderr: str
    result: dict[str, str]


def run_bench(script: str, *args: str, timeout: float = 280) -> BenchRun:
    """Run ``bench/<script>`` with ``args``; fail unless it ends well with a RESULT line."""
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT "), last
    result = dict(item.split("=", 1) for item in last.split()[1:])
    return BenchRun(done.stdout, done.stderr, result)
