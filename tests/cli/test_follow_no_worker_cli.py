"""`status --follow` says, once, when no worker seems to be running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.queue.jobs import QueueActivity
from tests.cli.test_worker_cli import queued
from tests.conftest import Cli

NOW = datetime(2026, 12, 2, 20, 40, tzinfo=UTC)
QUIET = timedelta(seconds=10)


def test_follow_says_once_that_no_worker_runs_then_finishes(cli: Cli, workspace_dir: Path) -> None:
    announcement = queued(cli, "Vattnet", "Koka vattnet")
    follower = subprocess.Popen(
        [
            *(sys.executable, "-m", "broadcaster", "status", str(announcement), "--follow"),
            *("--no-worker-after", "1"),
        ],
        cwd=workspace_dir,
        env={**os.environ, "COLUMNS": "100"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(4)  # several polls past the silence: the notice must still come only once
        assert follower.poll() is None, "it stopped while nothing was delivered"
        assert cli("worker", "--until-idle").exit_code == 0
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, stderr
    assert stderr.count("No worker seems to be running") == 1, stderr
    assert "`broadcaster worker`" in stderr
    assert "No worker" not in stdout  # stdout keeps the status picture only
    assert f"#{announcement} Vattnet — sent" in stdout


@pytest.mark.parametrize(
    ("activity", "unattended"),
    [
        (QueueActivity(due=0, oldest_due=None, running=0, last_change=NOW - QUIET * 9), False),
        (QueueActivity(due=3, oldest_due=NOW - QUIET, running=0, last_change=NOW - QUIET), True),
        # A worker holds a job: it is working, however quiet the table is.
        (QueueActivity(due=3, oldest_due=NOW - QUIET, running=1, last_change=NOW - QUIET), False),
        # Something was claimed or settled a moment ago.
        (QueueActivity(due=3, oldest_due=NOW - QUIET * 6, running=0, last_change=NOW), False),
        # The jobs only just became due (a scheduled send): give a worker its moment.
        (QueueActivity(due=1, oldest_due=NOW, running=0, last_change=NOW - QUIET * 6), False),
    ],
)
def test_unattended_means_due_and_nothing_claimed_for_the_whole_silence(
    activity: QueueActivity, unattended: bool
) -> None:
    assert activity.unattended(NOW, QUIET) is unattended
