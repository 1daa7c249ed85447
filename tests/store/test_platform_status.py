"""What a platform reports after sending: recorded only forward, only for the delivery's message."""

from __future__ import annotations

import itertools

import pytest

from broadcaster.app import App
from broadcaster.authoring import DraftInput, create_draft
from broadcaster.model import DeliveryState
from broadcaster.store.deliveries import (
    PLATFORM_STATUS_RANK,
    Delivery,
    DeliveryUpdate,
    NewDelivery,
    PlatformStatus,
    create_deliveries,
    deliveries_for,
    get_deliveries,
    platform_status_applies,
    record_platform_status,
    record_platform_statuses,
    record_updates,
)

SID = "SM" + "a" * 32


def sms_delivery(app: App, sid: str | None = SID) -> Delivery:
    draft = create_draft(app, "kommunikator", DraftInput(title="Läget", body="Text"))
    now = app.clock()
    with app.store.write() as conn:
        rows = [NewDelivery(target="sms-borgholm", channel="sms", recipient="+46701234567")]
        create_deliveries(
            conn, announcement_id=draft.id, revision_id=draft.revision.id, rows=rows, now=now
        )
        [made] = deliveries_for(conn, draft.id)
        if sid is not None:
            update = DeliveryUpdate(
                delivery_id=made.id,
                expected=(DeliveryState.PENDING,),
                attempt=None,
                state=DeliveryState.SENT,
                platform_id=sid,
            )
            record_updates(conn, [update], now)
        return get_deliveries(conn, [made.id])[made.id]


def reload(app: App, delivery_id: int) -> Delivery:
    with app.store.read() as conn:
        return get_deliveries(conn, [delivery_id])[delivery_id]


def test_a_status_is_recorded_with_its_error_code_and_time(db_app: App) -> None:
    sent = sms_delivery(db_app)
    with db_app.store.write() as conn:
        assert record_platform_status(conn, sent.id, SID, "undelivered", 30003, db_app.clock())
    after = reload(db_app, sent.id)
    assert (after.platform_status, after.platform_error) == ("undelivered", 30003)
    assert after.platform_status_at == db_app.clock()
    assert after.state == DeliveryState.SENT  # the queue's state is not the platform's


def test_the_python_rule_and_the_update_agree_for_every_pair_of_statuses(db_app: App) -> None:
    rank = PLATFORM_STATUS_RANK
    for stored, new in itertools.product([None, *rank], rank):
        sent = sms_delivery(db_app)
        with db_app.store.write() as conn:
            if stored is not None:
                record_platform_status(conn, sent.id, SID, stored, None, db_app.clock())
        before = reload(db_app, sent.id)
        report = PlatformStatus(delivery_id=sent.id, sid=SID, status=new)

        expected = platform_status_applies(before, report)
        with db_app.store.write() as conn:
            applied = record_platform_status(conn, sent.id, SID, new, None, db_app.clock())

        assert applied == expected == (stored is None or rank[new] > rank[stored]), (stored, new)
        assert reload(db_app, sent.id).platform_status == (new if applied else stored)


def test_a_report_about_another_message_is_ignored_unless_none_is_stored(db_app: App) -> None:
    sent, unsent = sms_delivery(db_app), sms_delivery(db_app, sid=None)
    other = "SM" + "b" * 32
    with db_app.store.write() as conn:
        assert not record_platform_status(conn, sent.id, other, "delivered", None, db_app.clock())
        assert record_platform_status(conn, unsent.id, other, "sent", None, db_app.clock())
    assert reload(db_app, sent.id).platform_status is None
    assert reload(db_app, unsent.id).platform_status == "sent"


def test_many_reports_at_once_follow_the_same_rule(db_app: App) -> None:
    first, second = sms_delivery(db_app), sms_delivery(db_app)
    reports = [
        PlatformStatus(delivery_id=first.id, sid=SID, status="delivered"),
        PlatformStatus(delivery_id=first.id, sid=SID, status="sent"),  # late: ignored
        PlatformStatus(delivery_id=second.id, sid=SID, status="failed", error_code=30008),
    ]
    with db_app.store.write() as conn:
        record_platform_statuses(conn, reports, db_app.clock())
    assert reload(db_app, first.id).platform_status == "delivered"
    assert reload(db_app, second.id).platform_error == 30008


def test_unknown_statuses_are_refused(db_app: App) -> None:
    sent = sms_delivery(db_app)
    with db_app.store.write() as conn, pytest.raises(ValueError, match="unknown platform status"):
        record_platform_status(conn, sent.id, SID, "exploded", None, db_app.clock())
