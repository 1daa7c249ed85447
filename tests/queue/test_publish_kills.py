"""Kill -9 the worker at random moments while it writes sites and runs their publish step.

Found on main: in ten kill -9 trials over 1,500 deliveries, 70 (SQLite) and 117 (PostgreSQL)
deliveries said ``sent`` while their ``publish_command`` never ran, and 10 to 20
``.index.html.*.tmp`` files were left in the served folders. Here the real website adapter runs
in real worker processes; the publish command appends the delivery's key to a log, so the log
says how often each delivery's publish ran.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.app import App
from broadcaster.rendering.message import Message
from broadcaster.reports import announcement_status
from broadcaster.store.announcements import get_announcement
from broadcaster.store.schema import deliveries
from tests.queue.conftest import Workers, approved, queue_recipients, wait_for

pytestmark = pytest.mark.slow

ANNOUNCEMENTS, RECIPIENTS = 15, 50  # x 2 website targets = 1,500 deliveries
TOTAL = ANNOUNCEMENTS * RECIPIENTS * 2
KILLS = 10
# The publish step appends the delivery's key to a log in the workspace: one line per run.
PUBLISH = '["sh", "-c", "echo \\"$BROADCASTER_DELIVERY_KEY\\" >> publish.log"]'


@pytest.fixture
def publishing_config(queue_config: Path) -> Path:
    """Both website targets publish after every update, four deliveries at a time."""
    text = queue_config.read_text(encoding="utf-8")
    for output in ("site/borgholm", "site/morbylanga"):
        text = text.replace(
            f'output_dir = "{output}"',
            f'output_dir = "{output}"\npublish_command = {PUBLISH}\nconcurrency = 4',
        )
    queue_config.write_text(text, encoding="utf-8")
    return queue_config


def queue_many(app: App) -> list[int]:
    """Fifteen different updates, each to both sites and fifty times over (as a list would)."""
    ids = []
    for number in range(ANNOUNCEMENTS):
        announcement_id = approved(app, title=f"Läget, uppdatering {number}")
        queue_recipients(app, announcement_id, ("web-borgholm", "web-morbylanga"), RECIPIENTS)
        ids.append(announcement_id)
    return ids


def published_keys(workspace: Path) -> Counter[str]:
    log = workspace / "publish.log"
    lines = log.read_text(encoding="utf-8").split() if log.exists() else []
    return Counter(lines)


def sent(app: App) -> int:
    with app.store.read() as conn:
        return len(conn.execute(select(deliveries.c.id).where(deliveries.c.state == "sent")).all())


def served_temporaries(workspace: Path) -> list[Path]:
    """Files a web server would serve that are not the site's own."""
    found = []
    for folder in (workspace / "site" / "borgholm", workspace / "site" / "morbylanga"):
        found += [p for p in folder.rglob("*") if p.name.startswith(".") or "tmp" in p.name]
    return found


def test_kill_9_at_random_moments_publishes_every_sent_delivery_exactly_once(
    queue_app: App, publishing_config: Path, workers: Workers
) -> None:
    workspace = publishing_config.parent
    ids = queue_many(queue_app)
    seed = int.from_bytes(os.urandom(4), "big")
    chance = random.Random(seed)
    progress = 0
    for _ in range(KILLS):
        victim = workers.start("--real-channels")
        # Let it get somewhere first, so each kill lands in different work.
        wait_for(lambda: len(published_keys(workspace)) > progress + 10, 120, "progress")  # noqa: B023
        time.sleep(chance.uniform(0.0, 1.5))
        victim.kill()  # SIGKILL: mid-write, mid-publish, mid-transaction, wherever it is
        victim.communicate(timeout=30)
        progress = len(published_keys(workspace))
    workers.start("--real-channels")
    wait_for(lambda: sent(queue_app) == TOTAL, 300, f"all {TOTAL} deliveries (seed {seed})")
    assert workers.stop_all()[-1] == 0
    runs = published_keys(workspace)
    keys = sent_keys(queue_app)
    assert len(keys) == TOTAL
    assert {runs[key] for key in keys} == {1}, f"seed {seed}"  # every publish ran exactly once
    assert set(runs) == keys  # and nothing else was published
    assert served_temporaries(workspace) == [], f"seed {seed}"
    for announcement_id in ids:
        assert announcement_status(queue_app, announcement_id)["state"] == "sent"
    for site in ("borgholm", "morbylanga"):
        index = (workspace / "site" / site / "index.html").read_text(encoding="utf-8")
        for link in re.findall(r'href="(updates/[^"]+)"', index):
            assert (workspace / "site" / site / link).exists(), link
        assert index.count("Läget, uppdatering") >= ANNOUNCEMENTS


def sent_keys(app: App) -> set[str]:
    """The idempotency key (what the publish step logs) of every delivery that says sent."""
    with app.store.read() as conn:
        rows = conn.execute(select(deliveries).where(deliveries.c.state == "sent")).all()
        messages = {}
        for announcement_id, target in {(row.announcement_id, row.target) for row in rows}:
            announcement = get_announcement(conn, announcement_id)
            messages[(announcement_id, target)] = Message.for_target(
                app.config,
                uid=announcement.uid,
                revision=announcement.revision,
                target_id=target,
                published_at=announcement.created_at,
                updated_at=announcement.created_at,
            )
    return {
        dataclasses.replace(
            messages[(row.announcement_id, row.target)], recipient=row.recipient
        ).idempotency_key
        for row in rows
    }
