"""`GET /metrics`: Prometheus text that prometheus_client's own parser reads, whose figures move
when the worker in `serve` delivers through the sandbox; and `/metrics` and `/healthz` turn 503
when the database is gone or hangs, and come back with it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from broadcaster.app import App
from broadcaster.model import DeliveryState, Severity
from broadcaster.queue.jobs import JobKind, NewJob, enqueue_many
from broadcaster.server.app import create_app
from broadcaster.server.context import ServerContext
from broadcaster.server.runner import listen
from broadcaster.store.deliveries import DeliveryUpdate, record_updates
from broadcaster.timeutil import utcnow
from tests.approvals.conftest import ANNA, JENS, OBJECT_IDS, open_workspace, submitted
from tests.approvals.conftest import write_config as approvals_config
from tests.approvals.test_card_jobs import threads
from tests.server.conftest import (
    SMS_LIST_TARGET,
    Running,
    ServeFactory,
    send_to_list,
    sms_deliveries,
    start_serve,
)

NUMBERS = ["+46701740010", "+46701740011", "+46701740012"]

Families = dict[str, list[Sample]]


def scrape(running: Running) -> Families:
    """``/metrics`` read with prometheus_client's parser: family name -> its samples."""
    answer = running.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert answer.headers["cache-control"] == "no-store"
    return {family.name: family.samples for family in text_string_to_metric_families(answer.text)}


def value(families: Families, name: str, **labels: str) -> float:
    """The one sample called ``name`` with exactly these labels (histograms: ``.._count``)."""
    family = name.removesuffix("_count").removesuffix("_sum")
    found = [s.value for s in families[family] if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, families[family])
    return found[0]


def context_of(running: Running) -> ServerContext:
    context: ServerContext = running.service.server.config.app.state.context
    return context


# ---------------------------------------------------------------------------------------------
# The figures


def test_the_figures_move_when_the_worker_in_serve_delivers_through_the_sandbox(
    serve_factory: ServeFactory, sandbox: Any, tmp_path: Path
) -> None:
    running = serve_factory(
        public_base_url="self", worker=True, secrets=sandbox.env(), sms_targets=SMS_LIST_TARGET
    )
    app = running.app
    before = scrape(running)
    assert value(before, "broadcaster_deliveries", channel="sms", state="sent") == 0
    assert value(before, "broadcaster_send_seconds_count", channel="sms") == 0
    assert before["broadcaster_approval_decisions"] == []  # no decision yet

    send_to_list(app, tmp_path, NUMBERS)

    after = wait_for(running, lambda f: sent(f) == len(NUMBERS))
    assert value(after, "broadcaster_send_seconds_count", channel="sms") == len(NUMBERS)
    assert value(after, "broadcaster_send_seconds_sum", channel="sms") > 0
    buckets = [
        s
        for s in after["broadcaster_send_seconds"]
        if s.name.endswith("_bucket") and s.labels["channel"] == "sms"
    ]
    assert [s.value for s in buckets if s.labels["le"] == "+Inf"] == [len(NUMBERS)]
    assert value(after, "broadcaster_send_seconds_count", channel="website") == 0
    assert value(after, "broadcaster_approval_decisions", decision="approve", via="cli") == 2
    assert value(after, "broadcaster_deliveries", channel="sms", state="pending") == 0
    assert value(after, "broadcaster_dead_letters", channel="sms") == 0
    assert value(after, "broadcaster_queue_jobs", state="queued") == 0
    assert value(after, "broadcaster_queue_due_jobs") == 0
    assert value(after, "broadcaster_oldest_due_job_age_seconds") == 0
    assert after["process_cpu_seconds"][0].value > 0  # the process collector, too
    # Channels, states and decision kinds only: never a recipient's number or a person.
    page = running.get("/metrics").text
    assert "+4670" not in page and "4670174" not in page and "hasselbom" not in page


def sent(families: Families) -> float:
    return value(families, "broadcaster_deliveries", channel="sms", state="sent")


def wait_for(running: Running, done: Any, timeout: float = 60) -> Families:
    """Scrape until ``done(families)``; fails after ``timeout`` seconds (bounds a failure)."""
    deadline = time.monotonic() + timeout
    while not done(families := scrape(running)):
        assert time.monotonic() < deadline, families
        time.sleep(0.1)
    return families


def test_queue_depth_oldest_due_age_and_dead_letters_come_from_the_database(
    serve_factory: ServeFactory,
) -> None:
    running = serve_factory(worker=False)
    app = running.app
    waiting, dead, later = sms_deliveries(app, 3, sent=False)
    now = utcnow()
    with app.store.write() as conn:
        jobs = [
            NewJob(kind=JobKind.DELIVER, run_at=run_at, delivery_id=d.id, target=d.target)
            for d, run_at in (
                (waiting, now - timedelta(seconds=30)),
                (later, now + timedelta(hours=1)),
            )
        ]
        enqueue_many(conn, jobs, now)
        update = DeliveryUpdate(
            delivery_id=dead.id,
            expected=(DeliveryState.PENDING,),
            attempt=None,
            state=DeliveryState.DEAD,
            error="gave up",
        )
        record_updates(conn, [update], now)

    families = scrape(running)

    assert value(families, "broadcaster_queue_jobs", state="queued") == 2
    assert value(families, "broadcaster_queue_jobs", state="running") == 0
    assert value(families, "broadcaster_queue_due_jobs") == 1
    assert 29 <= value(families, "broadcaster_oldest_due_job_age_seconds") < 600
    assert value(families, "broadcaster_dead_letters", channel="sms") == 1
    assert value(families, "broadcaster_deliveries", channel="sms", state="dead") == 1
    assert value(families, "broadcaster_deliveries", channel="sms", state="pending") == 2
    # Every state of a configured channel is there, at 0 when empty.
    states = {
        s.labels["state"]
        for s in families["broadcaster_deliveries"]
        if s.labels["channel"] == "website"
    }
    assert states == {state.value for state in DeliveryState}
    # Without a worker in this process, the latency histogram has no series.
    assert families["broadcaster_send_seconds"] == []


def test_each_server_has_a_registry_of_its_own(db_app: App) -> None:
    # Two servers in one process: with the global registry the second would be refused
    # (duplicated time series), and its figures would mix with the first's.
    first, second = create_app(db_app), create_app(db_app)

    assert first is not second
    assert b"broadcaster_" not in generate_latest(REGISTRY)


def test_only_get_is_answered(serve_factory: ServeFactory) -> None:
    running = serve_factory(worker=False)

    answer = httpx.post(f"{running.url}/metrics", content=b"x", timeout=10)

    assert answer.status_code == 405
    assert answer.json() == {"error": "method not allowed"}


# ---------------------------------------------------------------------------------------------
# The database gone, and back; the database hanging


def test_metrics_and_health_turn_503_when_the_database_is_gone_and_recover_with_it(
    serve_factory: ServeFactory, database_url: str, tmp_path: Path
) -> None:
    running = serve_factory(worker=False)
    assert running.get("/healthz").status_code == 200
    scrape(running)

    with database_away(running, database_url, tmp_path / "away"):
        health = running.get("/healthz")
        metrics = running.get("/metrics")
        assert (health.status_code, health.json()["database"]) == (503, "unavailable")
        assert metrics.status_code == 503
        assert "database did not answer" in metrics.json()["error"]
        assert "Traceback" not in metrics.text

    assert running.get("/healthz").status_code == 200
    assert value(scrape(running), "broadcaster_queue_jobs", state="queued") == 0


@contextmanager
def database_away(running: Running, database_url: str, parking: Path) -> Iterator[None]:
    """PostgreSQL: the test's schema renamed away. SQLite: the file moved away and a folder,
    which SQLite cannot open, in its place. Both come back as they were."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        schema = str(url.query["options"]).removeprefix("-csearch_path=")
        engine = create_engine(url.difference_update_query(["options"]))
        try:
            with engine.begin() as conn:
                conn.execute(text(f'ALTER SCHEMA "{schema}" RENAME TO "{schema}_away"'))
            yield
            with engine.begin() as conn:
                conn.execute(text(f'ALTER SCHEMA "{schema}_away" RENAME TO "{schema}"'))
        finally:
            engine.dispose()
        return
    database = Path(str(url.database))
    running.app.store.close()  # open connections would go on reading the moved file
    parking.mkdir()
    moved = [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm")) if p.exists()]
    for path in moved:
        shutil.move(path, parking / path.name)
    database.mkdir()
    yield
    database.rmdir()
    for path in moved:
        shutil.move(parking / path.name, path)


def test_a_hanging_database_gets_503_in_bounded_time_not_a_hung_request(
    serve_factory: ServeFactory, database_url: str
) -> None:
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite reads (WAL) never wait on a lock; a hang is a server database's")
    running = serve_factory(worker=False)
    context_of(running).database_timeout = 0.5
    assert running.get("/healthz").status_code == 200

    with jobs_locked(database_url):
        # Twice each: the second request shares the read still stuck, not a new thread.
        for _ in range(2):
            assert running.get("/healthz").status_code == 503
            assert running.get("/metrics").status_code == 503

    recovered = wait_for_status(running, "/healthz", 200)
    assert recovered.json()["database"] == "ok"
    assert wait_for_status(running, "/metrics", 200).text.startswith("# HELP")


@contextmanager
def jobs_locked(database_url: str) -> Iterator[None]:
    """Another session holds the job table locked against reads until the block ends."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            conn.execute(text("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"))
            yield
            transaction.rollback()
    finally:
        engine.dispose()


def wait_for_status(running: Running, path: str, status: int, timeout: float = 30) -> Any:
    """GET ``path`` until it answers ``status`` (a read stuck before may still be finishing)."""
    deadline = time.monotonic() + timeout
    while (answer := running.get(path)).status_code != status:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.05)
    return answer


def test_approvals_clicked_in_teams_are_counted_as_teams_decisions(
    workspace_dir: Path, database_url: str, sandbox: Any
) -> None:
    app = open_workspace(approvals_config(workspace_dir, database_url), sandbox)
    running = start_serve(app, listen("127.0.0.1", 0), worker=True)
    try:
        submitted(app, severity=Severity.CRISIS)  # a crisis: the last approval sends it
        card = wait_for_value(lambda: threads(sandbox))[0]
        for person in (ANNA, JENS):
            answer = sandbox.teams.click(
                f"{running.url}/api/messages",
                verb="approve",
                user_object_id=OBJECT_IDS[person],
                activity_id=card.id,
            )
            assert answer.status_code == 200, answer.text

        families = wait_for(running, lambda f: sent_anywhere(f) > 0)
        assert (
            value(families, "broadcaster_approval_decisions", decision="approve", via="teams") == 2
        )
        assert (
            sum(s.value for s in families["broadcaster_send_seconds"] if s.name.endswith("_count"))
            > 0
        )
    finally:
        running.stop()
        app.close()


def sent_anywhere(families: Families) -> float:
    return sum(s.value for s in families["broadcaster_deliveries"] if s.labels["state"] == "sent")


def wait_for_value(found: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := found()):
        assert time.monotonic() < deadline, "it did not happen in time"
        time.sleep(0.05)
    return result
