"""`status --follow` says, once, when no worker seems to be running."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from broadcaster.app import App
from broadcaster.cli.status_view import follow
from broadcaster.dispatch import dispatch_revision
from broadcaster.queue.jobs import QueueActivity
from broadcaster.worker_runtime import run_worker
from tests.cli.test_worker_cli import queued
from tests.conftest import Cli, FakeClock
from tests.queue.conftest import approved

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


def test_on_a_terminal_the_notice_sits_under_the_table(app: App, clock: FakeClock) -> None:
    announcement = approved(app)
    dispatch_revision(app, "kommunikator", announcement)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, height=50, highlight=False)
    follower = threading.Thread(
        target=follow, args=(app, announcement), kwargs={"console": console, "poll": 0.05}
    )
    follower.start()
    try:
        time.sleep(0.3)
        assert "No worker" not in screen.getvalue()  # jobs only just became due
        clock.advance(11)
        deadline = time.monotonic() + 10
        while "No worker seems to be running" not in screen.getvalue():
            assert time.monotonic() < deadline, screen.getvalue()
            time.sleep(0.05)
        asyncio.run(run_worker(app, until_idle=True))
    finally:
        follower.join(timeout=10)
    assert not follower.is_alive()
    words = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", " ", screen.getvalue()).split())
    assert "Start one in this workspace with `broadcaster worker`." in words
    last_picture = screen.getvalue().rsplit("\x1b[1A", 1)[-1]  # after the last redraw
    assert "sent" in last_picture and "No worker" not in last_picture
