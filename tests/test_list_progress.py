"""Progress of SMS lists in ``status``: counts that partition the recipients, one grouped query,
the failed recipients on request (masked), and the purge of old numbers."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from broadcaster.app import App
from broadcaster.deadletters import list_dead_letters, retry_dead_letters
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import InputError, NotFoundError
from broadcaster.list_progress import summary_state
from broadcaster.model import DeliveryState
from broadcaster.purge import purge_deliveries
from broadcaster.reports import announcement_status, audit_log, failed_recipients_report
from broadcaster.store.deliveries import PURGED_PREFIX
from broadcaster.store.schema import deliveries, revisions
from broadcaster.timeutil import parse_duration
from tests.conftest import FakeClock
from tests.factories import FICTIONAL_NUMBERS, SMS_TARGET, set_outcome, sms_deliveries
from tests.queue.conftest import approved

S = DeliveryState
#: (how many, state, other columns, the outcome status counts it as)
MIX: list[tuple[int, DeliveryState, dict[str, Any], str]] = [
    (2, S.PENDING, {}, "pending"),
    (1, S.SENDING, {}, "pending"),
    (1, S.RETRYING, {"next_attempt_at": None}, "pending"),
    (1, S.UNKNOWN, {}, "pending"),
    (3, S.SENT, {}, "sent"),
    # Twilio's own "sent" (handed to the carrier) is no handset report either.
    (1, S.SENT, {"platform_status": "sent"}, "sent"),
    (4, S.SENT, {"platform_status": "delivered"}, "delivered"),
    (2, S.SENT, {"platform_status": "undelivered", "platform_error": 30003}, "failed"),
    (1, S.SENT, {"platform_status": "failed", "platform_error": 30008}, "failed"),
    (2, S.DEAD, {"last_error": "Twilio 21211: +46 70 174 06 05 is not a number"}, "failed"),
    (2, S.CANCELLED, {"cancel_reason": "opted_out"}, "opted_out"),
    (1, S.CANCELLED, {}, "cancelled"),
]
UNMASKED = re.compile(r"\+46\d{8,}|174 ?06 ?\d\d")


def dispatched(app: App) -> int:
    """An announcement dispatched to a website, and (as the SMS channel would) to a list."""
    announcement_id = approved(app, to=("web-borgholm",))
    dispatch_revision(app, "kommunikator", announcement_id)
    return announcement_id


def mixed(app: App, announcement_id: int) -> dict[str, list[int]]:
    """The recipients of MIX, in its order; returns delivery ids by outcome."""
    total = sum(count for count, *_ in MIX)
    ids = sms_deliveries(app, announcement_id, FICTIONAL_NUMBERS[:total])
    by_outcome: dict[str, list[int]] = {}
    for count, state, columns, outcome in MIX:
        chosen, ids = ids[:count], ids[count:]
        set_outcome(app, chosen, state, **columns)
        by_outcome.setdefault(outcome, []).extend(chosen)
    return by_outcome


def test_list_counts_partition_the_recipients(db_app: App) -> None:
    announcement_id = dispatched(db_app)
    mixed(db_app, announcement_id)
    status = announcement_status(db_app, announcement_id)
    counts = status["lists"][SMS_TARGET]
    assert counts == {
        "revision": 1,
        "recipients": 21,
        "sent": 4,
        "delivered": 4,
        "failed": 5,
        "pending": 5,
        "opted_out": 2,
        "cancelled": 1,
    }
    parts = ("sent", "delivered", "failed", "pending", "opted_out", "cancelled")
    assert sum(counts[key] for key in parts) == counts["recipients"]
    web, sms = status["deliveries"]  # one entry per target, in creation order
    assert (web["target"], web["state"], web["id"]) == ("web-borgholm", "pending", web["id"])
    assert "recipients" not in web
    assert sms == {
        "id": None,
        "target": SMS_TARGET,
        "channel": "sms",
        "revision": 1,
        "state": "sending",
        "attempts": 1,
        "platform_id": None,
        "last_error": None,
        "next_attempt_at": None,
        "sent_at": sms["sent_at"],
        "recipients": 21,
        "states": {
            "cancelled": 3,
            "dead": 2,
            "pending": 2,
            "retrying": 1,
            "sending": 1,
            "sent": 11,
            "unknown": 1,
        },
    }
    assert sms["sent_at"] is not None


@pytest.mark.parametrize(
    ("states", "summary"),
    [
        ({"pending": 3}, "pending"),
        ({"pending": 3, "sent": 1}, "sending"),  # between two batches
        ({"pending": 3, "sending": 2}, "sending"),
        ({"sent": 5, "retrying": 1}, "retrying"),
        ({"sent": 5, "unknown": 1, "retrying": 1}, "retrying"),
        ({"sent": 5, "unknown": 1}, "unknown"),
        ({"sent": 9, "dead": 1}, "dead"),
        ({"sent": 3, "cancelled": 2}, "sent"),
        ({"cancelled": 2}, "cancelled"),
        ({"sent": 0, "cancelled": 2}, "cancelled"),
    ],
)
def test_a_list_has_the_state_that_most_needs_attention(
    states: dict[str, int], summary: str
) -> None:
    assert summary_state(states) == summary


def second_revision(app: App, announcement_id: int) -> int:
    """A revision 2 as a correction makes it (its content is not what matters here)."""
    with app.store.write() as conn:
        first = conn.execute(
            select(revisions).where(revisions.c.announcement_id == announcement_id)
        ).one()
        values = {k: v for k, v in first._mapping.items() if k != "id"} | {"number": 2}
        return int(
            conn.execute(revisions.insert().values(**values).returning(revisions.c.id)).scalar_one()
        )


def test_the_lists_show_the_newest_revision_sent_to_them(db_app: App) -> None:
    announcement_id = dispatched(db_app)
    mixed(db_app, announcement_id)
    revision = second_revision(db_app, announcement_id)
    ids = sms_deliveries(db_app, announcement_id, FICTIONAL_NUMBERS[:3], revision_id=revision)
    set_outcome(db_app, ids[:1], S.SENT, platform_status="delivered")
    status = announcement_status(db_app, announcement_id)
    assert status["lists"][SMS_TARGET] == {
        "revision": 2,
        "recipients": 3,
        "sent": 0,
        "delivered": 1,
        "failed": 0,
        "pending": 2,
        "opted_out": 0,
        "cancelled": 0,
    }
    summed = [(d["revision"], d["recipients"]) for d in status["deliveries"] if d["id"] is None]
    assert summed == [(1, 21), (2, 3)]  # one entry per revision, never one per recipient
    report = failed_recipients_report(db_app, announcement_id, SMS_TARGET)
    assert (report["revision"], report["count"]) == (2, 0)


def test_one_target_only(db_app: App) -> None:
    announcement_id = dispatched(db_app)
    mixed(db_app, announcement_id)
    sms = announcement_status(db_app, announcement_id, SMS_TARGET)
    assert [d["target"] for d in sms["deliveries"]] == [SMS_TARGET]
    assert list(sms["lists"]) == [SMS_TARGET]
    web = announcement_status(db_app, announcement_id, "web-borgholm")
    assert [d["target"] for d in web["deliveries"]] == ["web-borgholm"]
    assert web["lists"] == {}
    with pytest.raises(InputError, match=r"no target 'sms-nowhere'; its targets: sms-borgholm"):
        announcement_status(db_app, announcement_id, "sms-nowhere")
    # A target of the revision that has nothing sent yet is known: its summary is empty.
    assert announcement_status(db_app, approved(db_app), "web-morbylanga")["deliveries"] == []


def test_failed_recipients_are_listed_masked_and_only_on_request(db_app: App) -> None:
    announcement_id = dispatched(db_app)
    outcomes = mixed(db_app, announcement_id)
    report = failed_recipients_report(db_app, announcement_id, SMS_TARGET)
    assert report["count"] == 5
    assert [row["delivery_id"] for row in report["failed"]] == outcomes["failed"]
    first, *_, last = report["failed"]
    assert first["number"] == "+46 70 *** ** 13"
    assert (first["state"], first["platform_status"], first["error_code"]) == (
        "sent",
        "undelivered",
        30003,
    )
    assert (last["state"], last["platform_status"]) == ("dead", None)
    assert last["last_error"] == "Twilio 21211: +46 70 *** ** 05 is not a number"
    assert not UNMASKED.search(str(report))
    assert not UNMASKED.search(str(announcement_status(db_app, announcement_id)))
    with pytest.raises(InputError, match="no recipients on web-borgholm"):
        failed_recipients_report(db_app, announcement_id, "web-borgholm")
    with pytest.raises(InputError, match="no target"):
        failed_recipients_report(db_app, announcement_id, "sms-morbylanga")
    with pytest.raises(NotFoundError):
        failed_recipients_report(db_app, 999, SMS_TARGET)


def test_status_of_26000_recipients_is_a_few_queries(db_app: App) -> None:
    announcement_id = dispatched(db_app)
    numbers = [f"+4670{n:07d}" for n in range(26_000)]
    ids = sms_deliveries(db_app, announcement_id, numbers)
    set_outcome(db_app, ids[:20_000], S.SENT, platform_status="delivered")
    set_outcome(db_app, ids[20_000:20_100], S.DEAD, last_error="Twilio 30003")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db_app.store.engine, "before_cursor_execute", count)
    try:
        started = time.perf_counter()
        status = announcement_status(db_app, announcement_id)
        elapsed = time.perf_counter() - started
    finally:
        event.remove(db_app.store.engine, "before_cursor_execute", count)
    on_deliveries = [s for s in statements if "FROM deliveries" in s]
    assert len(on_deliveries) == 2, on_deliveries  # the one-per-target rows, and the counts
    assert len(status["deliveries"]) == 2
    assert status["lists"][SMS_TARGET]["recipients"] == 26_000
    assert status["lists"][SMS_TARGET]["delivered"] == 20_000
    assert status["lists"][SMS_TARGET]["failed"] == 100
    assert elapsed < 2.0, f"status took {elapsed:.2f} s"
    print(f"status of 26,000 recipients on {db_app.store.dialect}: {elapsed * 1000:.0f} ms")


# ---------------------------------------------------------------------------------------------
# Purging the numbers


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("99999w", timedelta(weeks=99999)),
    ],
)
def test_durations(text: str, length: timedelta) -> None:
    assert parse_duration(text) == length


@pytest.mark.parametrize(
    "text",
    ["30", "d", "0d", "-3d", "+3d", "1.5d", "30 d", " 30d", "30d ", "30D", "30days", "3m",
     "\u0661\u0662d", "100000d", "30d\n", ""],
)  # fmt: skip
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="is not a duration"):
        parse_duration(text)


def stored_recipients(app: App, announcement_id: int) -> dict[int, str]:
    with app.store.read() as conn:
        rows = conn.execute(
            select(deliveries.c.id, deliveries.c.recipient).where(
                deliveries.c.announcement_id == announcement_id
            )
        )
        return {row.id: row.recipient for row in rows}


def test_purge_replaces_old_finished_numbers_and_keeps_the_history(
    db_app: App, clock: FakeClock
) -> None:
    old = dispatched(db_app)
    outcomes = mixed(db_app, old)
    before = announcement_status(db_app, old)
    clock.advance(31 * 86400)
    recent = dispatched(db_app)
    recent_ids = sms_deliveries(db_app, recent, FICTIONAL_NUMBERS[:4])
    set_outcome(db_app, recent_ids, S.SENT)

    report = purge_deliveries(db_app, "dataskydd", "30d")

    unfinished = set(outcomes["pending"])
    assert report["purged"] == 21 - len(unfinished)
    assert report["unfinished"] == len(unfinished)
    assert report["older_than"] == "30d"
    kept = stored_recipients(db_app, old)
    for delivery_id, recipient in kept.items():
        if recipient == "":
            continue  # the website's delivery has no number
        if delivery_id in unfinished:  # the queue may still send it: it keeps its number
            assert recipient.startswith("+46"), recipient
        else:
            assert recipient == f"{PURGED_PREFIX}{delivery_id}"
    assert all(r.startswith("+46") for r in stored_recipients(db_app, recent).values() if r)
    after = announcement_status(db_app, old)
    assert after["lists"] == before["lists"]
    assert after["deliveries"] == before["deliveries"]
    failed = failed_recipients_report(db_app, old, SMS_TARGET)["failed"]
    assert {row["number"] for row in failed} == {"(purged)"}
    (event_,) = [e for e in audit_log(db_app)["events"] if e["action"] == "deliveries_purged"]
    assert event_["actor"] == "dataskydd"
    assert event_["details"] == {
        "older_than": "30d",
        "dispatched_before": report["dispatched_before"],
        "purged": report["purged"],
        "unfinished": len(unfinished),
    }
    # Again: nothing more to do; the unfinished ones are still waiting.
    assert purge_deliveries(db_app, "dataskydd", "30d")["purged"] == 0


def test_a_purged_dead_letter_is_never_sent_again(db_app: App, clock: FakeClock) -> None:
    announcement_id = dispatched(db_app)
    outcomes = mixed(db_app, announcement_id)
    dead = [d for d in outcomes["failed"] if d in _dead_ids(db_app)]
    clock.advance(8 * 86400)
    purge_deliveries(db_app, "dataskydd", "1w")
    listed = {row["id"] for row in list_dead_letters(db_app)["deadletters"]}
    assert not listed & set(dead)
    with pytest.raises(NotFoundError, match="not dead letters"):
        retry_dead_letters(db_app, "kommunikator", dead)
    with pytest.raises(InputError, match="no dead letters"):
        retry_dead_letters(db_app, "kommunikator", None)
    with db_app.store.read() as conn:
        states = conn.execute(
            select(deliveries.c.state, func.count())
            .where(deliveries.c.id.in_(dead))
            .group_by(deliveries.c.state)
        ).all()
    assert [tuple(row) for row in states] == [("dead", 2)]


def _dead_ids(app: App) -> set[int]:
    with app.store.read() as conn:
        query = select(deliveries.c.id).where(deliveries.c.state == S.DEAD)
        return set(conn.execute(query).scalars())


def test_a_bad_duration_purges_nothing(db_app: App, clock: FakeClock) -> None:
    announcement_id = dispatched(db_app)
    mixed(db_app, announcement_id)
    clock.advance(90 * 86400)
    with pytest.raises(InputError):
        purge_deliveries(db_app, "dataskydd", "30 days")
    assert all(
        not r.startswith(PURGED_PREFIX) for r in stored_recipients(db_app, announcement_id).values()
    )
    assert not [e for e in audit_log(db_app)["events"] if e["action"] == "deliveries_purged"]


def test_purge_counts_each_revision_by_its_own_dispatch(db_app: App, clock: FakeClock) -> None:
    announcement_id = dispatched(db_app)
    first = sms_deliveries(db_app, announcement_id, FICTIONAL_NUMBERS[:2])
    set_outcome(db_app, first, S.SENT)
    clock.advance(20 * 86400)
    revision = second_revision(db_app, announcement_id)
    second = sms_deliveries(db_app, announcement_id, FICTIONAL_NUMBERS[:2], revision_id=revision)
    set_outcome(db_app, second, S.SENT)
    with db_app.store.write() as conn:  # a retry by hand much later changes no dispatch time
        conn.execute(
            update(deliveries).where(deliveries.c.id.in_(first)).values(updated_at=clock())
        )
    clock.advance(15 * 86400)
    assert purge_deliveries(db_app, "dataskydd", "30d")["purged"] == 2
    recipients = stored_recipients(db_app, announcement_id)
    assert [recipients[i] for i in first] == [f"{PURGED_PREFIX}{i}" for i in first]
    assert [recipients[i][:3] for i in second] == ["+46", "+46"]
