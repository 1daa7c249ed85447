"""``[approval] send_on_approval``: the last approval enqueues the fan-out in its transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broadcaster.app import App, open_app
from broadcaster.approval import approve
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import ApprovalError, StateError
from broadcaster.model import AnnouncementState, Severity
from broadcaster.store.announcements import get_announcement
from broadcaster.workspace import load_workspace
from tests.approvals.conftest import (
    ANNA,
    JENS,
    count_deliveries,
    deliver_jobs,
    events,
    submitted,
    write_config,
)
from tests.conftest import Cli, replace_config

Opener = Callable[[bool | None], App]


@pytest.fixture
def open_policy(workspace_dir: Path, database_url: str) -> Iterator[Opener]:
    """Opens the workspace with ``send_on_approval`` set (None: the default), no Teams."""
    opened: list[App] = []

    def opener(send_on_approval: bool | None) -> App:
        path = write_config(workspace_dir, database_url, send_on_approval=send_on_approval,
                            teams=False, channel=False)  # fmt: skip
        app = open_app(load_workspace(path, {}))
        opened.append(app)
        return app

    yield opener
    for app in opened:
        app.close()


def state(app: App, announcement_id: int) -> AnnouncementState:
    with app.store.read() as conn:
        return get_announcement(conn, announcement_id).state


@pytest.mark.parametrize(
    ("setting", "severity", "sends"),
    [
        (None, Severity.CRISIS, True),
        (None, Severity.IMPORTANT, False),
        (None, Severity.INFO, False),
        (True, Severity.INFO, True),
        (False, Severity.CRISIS, False),
    ],
)
def test_the_last_approval_sends_when_the_policy_says_so(
    open_policy: Opener, setting: bool | None, severity: Severity, sends: bool
) -> None:
    app = open_policy(setting)
    announcement = submitted(app, severity=severity)
    first = approve(app, ANNA, announcement.id)
    assert not first.sending and count_deliveries(app, announcement.id) == 0
    last = approve(app, JENS, announcement.id)
    assert last.complete and last.sending is sends
    targets = len(announcement.revision.content.targets)
    if sends:
        assert state(app, announcement.id) == AnnouncementState.DISPATCHING
        assert (count_deliveries(app, announcement.id), deliver_jobs(app)) == (targets, targets)
        [dispatched] = events(app, announcement.id, "dispatched")
        assert dispatched.actor == JENS and dispatched.details["on_approval"] is True
    else:
        assert state(app, announcement.id) == AnnouncementState.APPROVED
        assert deliver_jobs(app) == 0
        # The command line's `send` still sends an approved update.
        dispatch_revision(app, "kommunikator", announcement.id)
        assert deliver_jobs(app) == targets


def test_an_approval_that_cannot_render_approves_without_sending(open_policy: Opener) -> None:
    app = open_policy(True)
    announcement = submitted(app)
    approve(app, ANNA, announcement.id)
    # The configuration changed after submit: one target is gone, so the preview fails.
    gone = announcement.revision.content.targets[0]
    replace_config(app, targets=[t for t in app.config.targets if t.id != gone])
    outcome = approve(app, JENS, announcement.id)
    assert outcome.complete and not outcome.sending
    assert outcome.not_sent is not None and gone in outcome.not_sent
    assert state(app, announcement.id) == AnnouncementState.APPROVED
    assert deliver_jobs(app) == 0
    [event] = events(app, announcement.id, "not_sent")
    assert gone in event.details["reason"]


def test_concurrent_last_approvals_send_exactly_once(open_policy: Opener) -> None:
    """Twenty approvals at once by two approvers (the CLI's path): one fan-out, one send."""
    app = open_policy(True)
    announcement = submitted(app)
    start = threading.Barrier(20)
    outcomes: list[object] = []

    def one(person: str) -> None:
        start.wait()
        try:
            outcomes.append(approve(app, person, announcement.id, via="cli"))
        except (StateError, ApprovalError) as refused:
            outcomes.append(refused)

    workers = [threading.Thread(target=one, args=(p,)) for p in [ANNA, JENS] * 10]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sent = [o for o in outcomes if getattr(o, "sending", False)]
    assert len(outcomes) == 20 and len(sent) == 1
    assert len(events(app, announcement.id, "dispatched")) == 1
    targets = len(announcement.revision.content.targets)
    assert (count_deliveries(app, announcement.id), deliver_jobs(app)) == (targets, targets)


def test_the_cli_says_the_approval_sends(workspace_dir: Path, database_url: str, cli: Cli) -> None:
    write_config(workspace_dir, database_url, send_on_approval=True, teams=False, channel=False)
    assert cli("draft", "--title", "Läget", "--body", "Text").exit_code == 0
    assert cli("submit", "1").exit_code == 0
    assert cli("approve", "1", "--as", ANNA).exit_code == 0
    result = cli("approve", "1", "--as", JENS)
    assert result.exit_code == 0, result.stderr
    assert "is being sent now" in " ".join(result.stdout.split())
    status = cli("status", "1", "--json")
    assert status.json()["state"] == "dispatching"
