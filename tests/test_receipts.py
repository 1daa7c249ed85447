"""Receipts: kept whole with the delivery, and handed to the next revision's delivery.

A correction edits, and a retraction deletes, what an earlier revision posted; for that the
adapter needs the receipt that earlier delivery stored (Receipt.platform_id and Receipt.data),
and the same idempotency key on every send and verify of one delivery.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from broadcaster.app import App
from broadcaster.delivery_work import WorkLoader
from broadcaster.errors import PermanentError, UnknownOutcome
from broadcaster.model import AnnouncementState, DeliveryState, Receipt
from broadcaster.queue.jobs import JobKind, claim, enqueue_revision
from broadcaster.store.announcements import add_revision, get_announcement, set_state
from broadcaster.store.deliveries import (
    DeliveryUpdate,
    NewDelivery,
    create_deliveries,
    deliveries_for,
    get_deliveries,
    record_updates,
)
from broadcaster.store.schema import deliveries
from tests.conftest import FakeClock
from tests.fakes import Script, scripted_registry
from tests.test_delivery import BORGHOLM, MORBYLANGA, dispatched, drain

TELEGRAM_LIKE = Receipt("7", {"chat_id": -1001234, "message_id": 7})


@pytest.fixture
def script(db_app: App) -> Script:
    script = Script()
    db_app.registry = scripted_registry(script)
    return script


def stored(app: App, announcement_id: int) -> dict[str, Any]:
    with app.store.read() as conn:
        return {d.target: d for d in deliveries_for(conn, announcement_id)}


def revise(app: App, announcement_id: int, title: str) -> int:
    """Dispatch a new revision of a sent announcement, as corrections will (issue 12).

    The lifecycle has no command for it yet, so the store's own functions do what that command
    will do in one transaction: a revision, its deliveries and their jobs.
    """
    now = app.clock()
    with app.store.write() as conn:
        current = get_announcement(conn, announcement_id)
        content = dataclasses.replace(current.revision.content, title=title)
        number = current.revision.number + 1
        add_revision(conn, announcement_id, number, content, "kommunikator", now)
        set_state(
            conn,
            announcement_id,
            current.state,
            AnnouncementState.DISPATCHING,
            now,
            current_revision=number,
        )
        revision = get_announcement(conn, announcement_id).revision
        rows = [NewDelivery(target=t, channel="website") for t in content.targets]
        create_deliveries(
            conn, announcement_id=announcement_id, revision_id=revision.id, rows=rows, now=now
        )
        enqueue_revision(
            conn, revision_id=revision.id, kind=JobKind.DELIVER, run_at=now, priority=2, now=now
        )
    return number


# -- A: the whole receipt is stored, tied to its attempt -----------------------------------------


def test_a_sent_delivery_keeps_the_receipts_data(db_app: App, script: Script) -> None:
    script.answer(BORGHOLM, TELEGRAM_LIKE)
    announcement_id = dispatched(db_app)
    drain(db_app)
    found = stored(db_app, announcement_id)
    assert found[BORGHOLM].receipt == TELEGRAM_LIKE
    # A receipt without data is stored as such, not as "no receipt".
    assert found[MORBYLANGA].receipt == Receipt(found[MORBYLANGA].platform_id or "?", {})
    assert found[MORBYLANGA].platform_id is not None


def test_a_verified_receipt_keeps_its_data_too(
    db_app: App, script: Script, clock: FakeClock
) -> None:
    script.holds.add(BORGHOLM)
    script.found = Receipt("post-9", {"conversation_id": "19:x@thread.tacv2", "activity_id": "9"})
    script.answer(BORGHOLM, UnknownOutcome("website", "read timeout after sending"))
    announcement_id = dispatched(db_app)
    drain(db_app)
    clock.advance(10)
    drain(db_app)
    assert stored(db_app, announcement_id)[BORGHOLM].receipt == script.found


def test_a_stale_attempts_receipt_does_not_overwrite_a_newer_one(db_app: App) -> None:
    announcement_id = dispatched(db_app)
    borgholm = stored(db_app, announcement_id)[BORGHOLM]
    now = db_app.clock()
    with db_app.store.write() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == borgholm.id)
            .values(state=DeliveryState.SENDING, attempts=2)
        )

        def sent(attempt: int, receipt: Receipt) -> DeliveryUpdate:
            return DeliveryUpdate(
                delivery_id=borgholm.id,
                expected=(DeliveryState.SENDING,),
                attempt=attempt,
                state=DeliveryState.SENT,
                platform_id=receipt.platform_id,
                receipt_data=receipt.data,
            )

        record_updates(conn, [sent(1, Receipt("stale", {"message_id": 1}))], now)
        assert get_deliveries(conn, [borgholm.id])[borgholm.id].receipt is None
        record_updates(conn, [sent(2, TELEGRAM_LIKE)], now)
        assert get_deliveries(conn, [borgholm.id])[borgholm.id].receipt == TELEGRAM_LIKE


# -- B: a later revision's delivery sees what the earlier one left --------------------------------


def test_the_next_revision_is_handed_the_receipt_of_the_previous(
    db_app: App, script: Script
) -> None:
    script.answer(BORGHOLM, TELEGRAM_LIKE)
    announcement_id = dispatched(db_app)
    drain(db_app)
    first = stored(db_app, announcement_id)
    revise(db_app, announcement_id, "Läget, rättat")
    drain(db_app)
    by_revision = {(m.target.id, m.revision): m.previous for m in script.send_messages}
    assert by_revision[(BORGHOLM, 1)] is None
    assert by_revision[(MORBYLANGA, 1)] is None
    assert by_revision[(BORGHOLM, 2)] == TELEGRAM_LIKE
    assert by_revision[(MORBYLANGA, 2)] == first[MORBYLANGA].receipt


def test_a_revision_that_did_not_arrive_is_skipped(db_app: App, script: Script) -> None:
    script.answer(BORGHOLM, TELEGRAM_LIKE)
    announcement_id = dispatched(db_app)
    drain(db_app)
    script.answer(BORGHOLM, PermanentError("website", "page removed"))
    revise(db_app, announcement_id, "Andra")
    drain(db_app)
    assert stored(db_app, announcement_id)[BORGHOLM].state == DeliveryState.DEAD
    revise(db_app, announcement_id, "Tredje")
    drain(db_app)
    third = [m for m in script.send_messages if m.revision == 3 and m.target.id == BORGHOLM]
    assert [m.previous for m in third] == [TELEGRAM_LIKE]  # revision 1's post, still up


def test_previous_receipts_cost_one_query_per_batch(db_app: App, script: Script) -> None:
    announcement_id = dispatched(db_app)
    drain(db_app)
    revise(db_app, announcement_id, "Läget, rättat")
    with db_app.store.read() as conn:
        pending = [d.id for d in deliveries_for(conn, announcement_id) if not d.state.is_final]
    assert len(pending) == 2
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    loader = WorkLoader(db_app.store, lambda: db_app.config)
    event.listen(db_app.store.engine, "before_cursor_execute", count)
    try:
        works = loader.load(pending)
    finally:
        event.remove(db_app.store.engine, "before_cursor_execute", count)
    assert all(w is not None and w.message and w.message.previous for w in works)
    joined = [s for s in statements if "JOIN revisions" in s and "deliveries.platform_id" in s]
    assert len(joined) == 1, statements


# -- C: one idempotency key per delivery, on send and on verify after a takeover ------------------


def test_send_and_verify_after_a_takeover_get_the_same_key(
    db_app: App, script: Script, clock: FakeClock
) -> None:
    dispatched(db_app)
    with db_app.store.write() as conn:  # a worker claims both jobs, marks them sending, dies
        claim(
            conn,
            owner="dead-worker",
            wants={},
            others=10,
            limit=10,
            lease=timedelta(minutes=5),
            now=clock(),
        )
        conn.execute(update(deliveries).values(state=DeliveryState.SENDING, attempts=1))
    clock.advance(5 * 60 + 1)
    drain(db_app)  # the takeover verifies; nothing there, so it sends
    verify_keys = {m.target.id: m.idempotency_key for m in script.verify_messages}
    send_keys = {m.target.id: m.idempotency_key for m in script.send_messages}
    assert verify_keys == send_keys
    assert len(set(send_keys.values())) == 2
    assert all(key.endswith(f".1.{target}") for target, key in send_keys.items())


def test_every_attempt_of_one_delivery_has_the_same_key(
    db_app: App, script: Script, clock: FakeClock
) -> None:
    script.answer(BORGHOLM, UnknownOutcome("website", "connection reset"))
    dispatched(db_app)
    drain(db_app)
    clock.advance(10)
    drain(db_app)
    keys = [m.idempotency_key for m in script.send_messages if m.target.id == BORGHOLM]
    verified = [m.idempotency_key for m in script.verify_messages]
    assert len(keys) == 2 and len(set(keys + verified)) == 1
