"""``bench/sms_fanout.py`` runs end to end on tiny numbers, so that it cannot rot between the
times someone runs ``make bench``: the CLI, the workers, the sandbox, both bare loops and (when
the bench extra is installed) Apprise, down to the RESULT line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bench_run import run_bench

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench" / "sms_fanout.py"
KEYS = {
    "recipients",
    "msgs_per_s",
    "peak_rss_mb",
    "ceiling_msgs_per_s",
    "ratio_vs_ceiling",
    "apprise_msgs_per_s",
    "ratio_vs_apprise",
    "dispatch_s",
}


def test_sms_fanout_runs_on_50_recipients() -> None:
    done = run_bench(BENCH.name, "--recipients", "50", "--quick")
    result = done.result
    assert set(result) == KEYS
    assert result["recipients"] == "50"
    for key in KEYS - {"apprise_msgs_per_s", "ratio_vs_apprise"}:  # nan without the bench extra
        assert float(result[key]) > 0, key
    # The sandbox's record proved each of the 50 got exactly one message.
    assert "50 messages created, to 50 numbers, 0 duplicates" in done.stdout
    # Numbers are personal data, also in a benchmark's output.
    assert not re.search(r"\+?46\s?70\d|070-?\d", done.stdout + done.stderr)
