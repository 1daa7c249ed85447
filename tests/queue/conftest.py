"""Fixtures for the queue: a workspace tuned for fast retries, the recorder, fan-out helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from broadcaster.app import App, open_app
from broadcaster.approval import approve
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.model import AnnouncementState
from broadcaster.queue.jobs import JobKind, NewJob, enqueue_many
from broadcaster.store.announcements import get_announcement
from broadcaster.store.deliveries import NewDelivery, create_deliveries
from broadcaster.store.schema import announcements
from broadcaster.workspace import load_workspace
from tests.conftest import set_database_url
from tests.queue.recorder import Recorder, recorder_registry

QUEUE_SETTINGS = """
[queue]
retry_base_seconds = 0.05
retry_cap_seconds = 0.5
lease_seconds = 5
batch_size = 50
max_in_flight = 32
shutdown_grace_seconds = 2
"""


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as running:
        yield running


@pytest.fixture
def queue_config(workspace_dir: Path, database_url: str) -> Path:
    """The workspace's config on the test database, with fast retries and short leases."""
    set_database_url(workspace_dir, database_url)
    path = workspace_dir / "broadcaster.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("[approval]", QUEUE_SETTINGS + "\n[approval]", 1), encoding="utf-8"
    )
    return path


@pytest.fixture
def queue_app(queue_config: Path, recorder: Recorder) -> Iterator[App]:
    """An App with the real clock whose website targets deliver to the recorder."""
    application = open_app(load_workspace(queue_config, {}))
    application.registry = recorder_registry(recorder.url)
    yield application
    application.close()


def approved(app: App, title: str = "Läget", to: tuple[str, ...] = ()) -> int:
    draft = create_draft(app, "kommunikator", DraftInput(title=title, body="Text", to=to))
    submit(app, "kommunikator", draft.id)
    approve(app, "anna.hasselbom", draft.id)
    approve(app, "jens.odevall", draft.id)
    return draft.id


def fan_out(app: App, count: int, target: str = "web-borgholm") -> int:
    """An approved announcement dispatched as ``count`` deliveries to one target (one per
    recipient, as an SMS list is), queued in one transaction; returns the announcement id."""
    announcement_id = approved(app, to=(target,))
    now = app.clock()
    with app.store.write() as conn:
        revision = get_announcement(conn, announcement_id).revision
        rows = [
            NewDelivery(target=target, channel="website", recipient=f"+4670{number:07d}")
            for number in range(count)
        ]
        ids = create_deliveries(
            conn, announcement_id=announcement_id, revision_id=revision.id, rows=rows, now=now
        )
        jobs = [
            NewJob(kind=JobKind.DELIVER, delivery_id=delivery_id, target=target, run_at=now)
            for delivery_id in ids
        ]
        enqueue_many(conn, jobs, now)
        conn.execute(
            update(announcements)
            .where(announcements.c.id == announcement_id)
            .values(state=AnnouncementState.DISPATCHING)
        )
    return announcement_id
