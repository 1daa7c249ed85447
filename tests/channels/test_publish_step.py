"""The publish step (``publish_command``) runs once per delivery, whatever happens to the worker.

Real subprocesses on the real file system: the commands are small ``sh`` scripts that append the
delivery key to ``publish.log`` in the workspace, so a test counts how often each one ran.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from broadcaster.app import App
from broadcaster.channels.base import Receipt
from broadcaster.channels.publish_output import KEPT_BYTES, kept_output
from broadcaster.channels.website import WebsiteChannel
from broadcaster.config import WebsiteStaticTarget
from broadcaster.errors import TransientError
from broadcaster.rendering.message import Message
from tests.channels.test_website import publish, site
from tests.conftest import Cli, FakeClock, replace_config
from tests.factories import make_message
from tests.test_delivery import by_target, dispatched, drain

LOG_KEY = 'echo "$BROADCASTER_DELIVERY_KEY" >> publish.log'


def channel_with(app: App, script: str, **changes: Any) -> WebsiteChannel:
    """The borgholm website adapter with ``sh -c script`` as its publish_command."""
    target = app.config.target("web-borgholm")
    assert isinstance(target, WebsiteStaticTarget)
    configured = target.model_copy(update={"publish_command": ["sh", "-c", script], **changes})
    return WebsiteChannel(configured, app.channel_context())


def send(channel: WebsiteChannel, message: Message) -> Receipt:
    return asyncio.run(channel.send(message, channel.prepare(message)))


def verify(channel: WebsiteChannel, message: Message) -> Receipt | None:
    return asyncio.run(channel.verify(message))


def publish_log(workspace_dir: Path) -> list[str]:
    """Every line the publish commands wrote, in order."""
    log = workspace_dir / "publish.log"
    return log.read_text().splitlines() if log.exists() else []


def gone(pid: int) -> bool:
    """True when a process no longer runs (a zombie nobody reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (on the event loop) until ``condition()`` is true."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


def test_publish_runs_once_per_delivery_with_its_environment(
    app: App, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISH_TEST_INHERITED", "from the worker")
    fields = (
        "$BROADCASTER_DELIVERY_KEY",
        "$BROADCASTER_TARGET",
        "$BROADCASTER_SITE_DIR",
        "$BROADCASTER_ANNOUNCEMENT_UID",
        "$BROADCASTER_REVISION",
        "$PUBLISH_TEST_INHERITED",
        "$(pwd -P)",
    )
    quoted = " ".join(f'"{field}"' for field in fields)
    channel = channel_with(app, f"printf '%s|' {quoted} >> env.log; {LOG_KEY}")
    message = make_message(app, "web-borgholm")
    assert send(channel, message).platform_id == f"updates/{message.uid}.html"
    assert send(channel, message).platform_id == f"updates/{message.uid}.html"  # a repeat
    assert verify(channel, message) is not None
    assert publish_log(workspace_dir) == [message.idempotency_key]
    assert (workspace_dir / "env.log").read_text().split("|")[:-1] == [
        message.idempotency_key,
        "web-borgholm",
        str(site(workspace_dir)),
        message.uid,
        "1",
        "from the worker",
        str(workspace_dir.resolve()),
    ]
    app.clock.advance(60)  # type: ignore[attr-defined]
    other = make_message(app, "web-borgholm", title="Nästa")
    send(channel, other)
    assert publish_log(workspace_dir) == [message.idempotency_key, other.idempotency_key]


def test_a_failed_publish_is_reported_and_run_again(app: App, workspace_dir: Path) -> None:
    (workspace_dir / "fail-once").touch()
    channel = channel_with(
        app,
        "if [ -e fail-once ]; then rm fail-once; echo trying; echo no route to backup >&2; "
        f"exit 3; fi; {LOG_KEY}",
    )
    message = make_message(app, "web-borgholm")
    with pytest.raises(TransientError, match="exited with 3: trying / no route to backup"):
        send(channel, message)
    assert verify(channel, message) is None  # the files are there; the publish is not
    send(channel, message)
    assert verify(channel, message) is not None
    assert publish_log(workspace_dir) == [message.idempotency_key]


def test_a_command_that_cannot_start_is_a_transient_error(app: App) -> None:
    target = app.config.target("web-borgholm")
    assert isinstance(target, WebsiteStaticTarget)
    configured = target.model_copy(update={"publish_command": ["/nonexistent/publish-site"]})
    channel = WebsiteChannel(configured, app.channel_context())
    message = make_message(app, "web-borgholm")
    with pytest.raises(TransientError, match="exited with 127: cannot run /nonexistent"):
        send(channel, message)


def test_a_publish_that_runs_too_long_is_stopped_with_its_children(
    app: App, workspace_dir: Path
) -> None:
    channel = channel_with(app, "sleep 30 & echo $! > child.pid; wait", publish_timeout_seconds=0.5)
    message = make_message(app, "web-borgholm")
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"longer than publish_timeout_seconds \(0.5 s\)"):
        send(channel, message)
    assert time.monotonic() - started < 10
    child = int((workspace_dir / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while not gone(child):
        assert time.monotonic() < deadline, f"the command's child {child} still runs"
        time.sleep(0.02)
    assert verify(channel, message) is None


def test_a_cancelled_send_lets_the_publish_finish_and_nothing_runs_twice(
    app: App, workspace_dir: Path
) -> None:
    """The worker's deadline cancels send mid-publish; verify and a resend wait, then agree."""
    started = workspace_dir / "started"
    channel = channel_with(app, f"touch started; sleep 1.5; {LOG_KEY}")
    message = make_message(app, "web-borgholm")

    async def scenario() -> None:
        task = asyncio.create_task(channel.send(message, channel.prepare(message)))
        await asyncio.sleep(0.5)
        await until(started.exists)  # the command runs (a loaded machine may take longer)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert publish_log(workspace_dir) == []  # still running
        receipt = await channel.verify(message)  # waits for the running publish
        assert receipt is not None
        assert publish_log(workspace_dir) == [message.idempotency_key]
        await channel.send(message, channel.prepare(message))

    asyncio.run(scenario())
    assert publish_log(workspace_dir) == [message.idempotency_key]


def test_the_publish_outlives_the_event_loop_that_started_it(app: App, workspace_dir: Path) -> None:
    """A worker that shuts down (its loop closes) mid-publish must not kill the publish."""
    started = workspace_dir / "started"
    channel = channel_with(app, f"touch started; sleep 0.8; {LOG_KEY}")
    message = make_message(app, "web-borgholm")

    async def start_then_stop() -> None:
        task = asyncio.create_task(channel.send(message, channel.prepare(message)))
        await until(started.exists)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(start_then_stop())
    deadline = time.monotonic() + 10
    while not publish_log(workspace_dir):
        assert time.monotonic() < deadline, "the publish was killed with the loop"
        time.sleep(0.02)
    assert verify(channel, message) is not None
    send(channel, message)
    assert publish_log(workspace_dir) == [message.idempotency_key]


def test_two_workers_sending_one_delivery_publish_it_once(app: App, workspace_dir: Path) -> None:
    """A takeover while the first owner still runs: both send, the command runs once."""
    first = channel_with(app, f"sleep 0.3; {LOG_KEY}")
    second = channel_with(app, f"sleep 0.3; {LOG_KEY}")
    message = make_message(app, "web-borgholm")

    async def both() -> tuple[Receipt, Receipt]:
        return await asyncio.gather(
            first.send(message, first.prepare(message)),
            second.send(message, second.prepare(message)),
        )

    assert len(asyncio.run(both())) == 2
    assert publish_log(workspace_dir) == [message.idempotency_key]


def test_verify_needs_every_step_and_send_resumes_at_the_first_missing(
    app: App, workspace_dir: Path
) -> None:
    """Files written, then the worker died: verify says no, send only runs the publish."""
    message = make_message(app, "web-borgholm")
    publish(app, message)  # the files step, done by an adapter without the publish step
    channel = channel_with(app, LOG_KEY)
    assert verify(channel, message) is None
    root = site(workspace_dir)
    written = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    send(channel, message)
    assert {p: p.stat().st_mtime_ns for p in written} == written  # files untouched
    assert publish_log(workspace_dir) == [message.idempotency_key]
    assert verify(channel, message) is not None


# ---------------------------------------------------------------------------------------------
# Through the real worker: the exit status and the output's tail stay with the delivery

#: Fails on its first two runs (as rsync does when the backup host is unreachable), then works;
#: it prints a password in a URL, a secret from its environment and a phone number as well.
FLAKY = """
n=$(cat runs 2>/dev/null || echo 0); n=$((n + 1)); echo $n > runs
echo "run $n: rsync -a site/borgholm/ rsync://kris:hunter2hunter2@backup.example/kris/"
echo "token in env: $PUBLISH_TEST_TOKEN; jour +46 70 123 45 67"
if [ $n -lt 3 ]; then
    echo "rsync: failed to connect to backup.example: Connection refused" >&2; exit 10
fi
echo "sent 48213 bytes  received 1190 bytes"
"""


def with_publish_command(app: App, script: str) -> None:
    """``web-borgholm`` with ``sh -c script`` as its publish_command, as if configured so."""
    targets = [
        t.model_copy(update={"publish_command": ["sh", "-c", script]})
        if t.id == "web-borgholm"
        else t
        for t in app.config.targets
    ]
    replace_config(app, targets=targets)


def test_a_publish_failing_twice_is_sent_on_the_third_attempt_with_its_output_kept(
    db_app: App, workspace_dir: Path, clock: FakeClock, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISH_TEST_TOKEN", "s3cr3t-t0ken-value")
    with_publish_command(db_app, FLAKY)
    announcement_id = dispatched(db_app)
    errors = []
    for attempt in (1, 2):
        drain(db_app)
        found = by_target(db_app, announcement_id)
        assert found["web-morbylanga"]["state"] == "sent"  # nothing of it holds others back
        borgholm = found["web-borgholm"]
        assert (borgholm["state"], borgholm["attempts"]) == ("retrying", attempt)
        errors.append(str(borgholm["last_error"]))
        clock.advance(3600)  # past any backoff
    assert errors[0].startswith("TransientError: publish_command exited with 10: run 1: rsync -a")
    assert errors[1].startswith("TransientError: publish_command exited with 10: run 2: rsync -a")
    assert errors[1].endswith("failed to connect to backup.example: Connection refused")
    drain(db_app)
    status = cli("status", str(announcement_id), "--json")
    assert status.exit_code == 0, status.stderr
    borgholm = next(d for d in status.json()["deliveries"] if d["target"] == "web-borgholm")
    assert (borgholm["state"], borgholm["attempts"], borgholm["last_error"]) == ("sent", 3, None)
    data = borgholm["receipt_data"]
    assert data["publish_exit_code"] == 0
    assert data["publish_finished"].startswith("20")
    assert data["publish_output"].splitlines() == [
        "run 3: rsync -a site/borgholm/ rsync://kris:***@backup.example/kris/",
        "token in env: ***; jour +46 70 *** ** 67",
        "sent 48213 bytes  received 1190 bytes",
    ]
    everything = status.stdout + "".join(errors)
    for secret in ("hunter2", "s3cr3t-t0ken-value", "123 45 67"):
        assert secret not in everything
    assert (workspace_dir / "runs").read_text().strip() == "3"
    # The site was written on the first attempt and not again: only the publish step was retried.
    assert borgholm["platform_id"].startswith("updates/")


def test_a_long_output_is_kept_as_its_last_two_kilobytes_from_a_whole_line(
    app: App, workspace_dir: Path
) -> None:
    channel = channel_with(app, 'for i in $(seq 1 400); do echo "line $i of the transfer"; done')
    receipt = send(channel, make_message(app, "web-borgholm"))
    output = str(receipt.data["publish_output"])
    assert 1900 < len(output.encode()) <= KEPT_BYTES
    assert output.splitlines()[-1] == "line 400 of the transfer"
    assert output.splitlines()[0].startswith("line ")  # no line cut in half


def test_kept_output_masks_secrets_and_numbers() -> None:
    environ = {"RSYNC_PASSWORD": "correct-horse", "HOME": "/home/kris", "API_KEY": "abc"}
    output = (
        "using RSYNC_PASSWORD=correct-horse\n"
        "https://deploy:p4ss@cms.example/ and sftp://u:pw@host:22/x\n"
        "ring 070-123 45 67, home /home/kris, key abc\n"
    )
    assert kept_output(output, environ).splitlines() == [
        "using RSYNC_PASSWORD=***",
        "https://deploy:***@cms.example/ and sftp://u:***@host:22/x",
        # a short value is no secret worth masking a text for; a path is no secret at all
        "ring 070 *** ** 67, home /home/kris, key abc",
    ]


def test_a_long_failing_output_leads_with_its_last_line(app: App) -> None:
    channel = channel_with(
        app, 'for i in $(seq 1 50); do echo "copying file $i"; done; echo "disk full" >&2; exit 11'
    )
    with pytest.raises(TransientError) as caught:
        send(channel, make_message(app, "web-borgholm"))
    error = caught.value.message
    assert error.startswith("publish_command exited with 11: disk full (its output's last 2048")
    assert error.endswith("copying file 49 / copying file 50 / disk full)")
