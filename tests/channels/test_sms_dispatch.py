"""A dispatch to an SMS list creates the deliveries in the database (INSERT ... SELECT from the
list): row for row what reading the list into Python created, opted-out members included.

The SMS adapter names its list (``recipient_list``), so the dispatch never reads the numbers;
the comparison runs the same list through the adapter's ``recipients`` (the path every other
per-recipient channel takes) on the same database.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from broadcaster.app import App
from broadcaster.channels.base import RecipientDirectory
from broadcaster.channels.registry import ChannelRegistry
from broadcaster.channels.sms import SmsChannel
from broadcaster.config import SmsTarget, TargetConfig
from broadcaster.dispatch import dispatch_revision
from broadcaster.preview import preview_announcement
from broadcaster.recipients import import_list, opt_out
from broadcaster.store.announcements import get_announcement
from broadcaster.store.schema import audit_events, deliveries, jobs
from tests.channels.test_sms import LIST, TARGET
from tests.queue.conftest import approved

# Numbers from the range PTS keeps for fiction, in an import order that is not sorted, one
# listed twice (one member), two of them on the opt-out list.
LISTED = ("+46701740609", "+46701740605", "+46701740608", "+46701740606", "+46701740607")
OPTED = ("+46701740608", "+46701740605")
#: On the opt-out list, not on the list: gets no delivery at all.
STRANGER = "+46701740699"


class ListedInPython(SmsChannel):
    """The SMS adapter without its list: the dispatch reads ``recipients`` into Python."""

    @classmethod
    def recipient_list(cls, target: TargetConfig) -> str | None:
        return None

    @classmethod
    def recipients(cls, target: TargetConfig, directory: RecipientDirectory) -> Sequence[str]:
        assert isinstance(target, SmsTarget)
        return directory.members(target.list)


def import_members(app: App, tmp_path: Path) -> None:
    csv = tmp_path / "boende.csv"
    numbers = [*LISTED, LISTED[2]]
    csv.write_text("nummer\n" + "".join(f"{n}\n" for n in numbers), encoding="utf-8")
    import_list(app, "kommunikator", LIST, csv)
    for number in (*OPTED, STRANGER):
        opt_out(app, "kommunikator", number)


def created(app: App, announcement_id: int) -> list[dict[str, Any]]:
    """The announcement's deliveries in creation order, each with its job (None: no job),
    without what differs between two announcements (ids, times)."""
    with app.store.read() as conn:
        queued = {row.delivery_id: row for row in conn.execute(select(jobs)).all()}
        found = conn.execute(
            select(deliveries)
            .where(deliveries.c.announcement_id == announcement_id)
            .order_by(deliveries.c.id)
        ).all()
    rows = []
    for row in found:
        job = queued.get(row.id)
        values = dict(row._mapping)
        assert values["created_at"] == values["updated_at"]
        for key in ("id", "announcement_id", "revision_id", "created_at", "updated_at"):
            del values[key]
        values["job"] = (
            None
            if job is None
            else (job.kind, job.target, job.state, job.priority, job.attempts, job.run_at)
        )
        rows.append(values)
    return rows


def dispatched_event(app: App, announcement_id: int) -> dict[str, Any]:
    with app.store.read() as conn:
        row = conn.execute(
            select(audit_events).where(
                audit_events.c.announcement_id == announcement_id,
                audit_events.c.action == "dispatched",
            )
        ).one()
    return dict(row._mapping)


def test_list_deliveries_created_in_the_database_equal_those_read_into_python(
    sms_app: App,
    tmp_path: Path,
) -> None:
    app = sms_app
    import_members(app, tmp_path)
    real = app.registry
    python_side = ChannelRegistry()
    python_side.register_class("sms", ListedInPython)
    app.registry = python_side
    before = approved(app, to=(TARGET,))
    dispatch_revision(app, "kommunikator", before)
    app.registry = real
    now = approved(app, to=(TARGET,))
    dispatch_revision(app, "kommunikator", now)

    old, new = created(app, before), created(app, now)
    # Each dispatch has its own moment: the jobs' run_at are left out of the comparison.
    for rows in (old, new):
        for row in rows:
            if row["job"] is not None:
                row["job"] = row["job"][:-1]
    assert new == old
    # And what that is: every member once, in import order; opted-out ones cancelled, no job.
    assert [row["recipient"] for row in new] == list(LISTED)
    for row in new:
        opted = row["recipient"] in OPTED
        assert row["state"] == ("cancelled" if opted else "pending")
        assert row["cancel_reason"] == ("opted_out" if opted else None)
        assert row["attempts"] == 0
        assert row["target"] == TARGET and row["channel"] == "sms"
        assert (row["job"] is None) == opted
        if not opted:
            assert row["job"][:3] == ("deliver", TARGET, "queued")
    for announcement_id in (before, now):
        details = dispatched_event(app, announcement_id)["details"]
        assert (details["deliveries"], details["opted_out"]) == (5, 2)


def test_a_list_target_keeps_its_place_among_the_targets(
    sms_app: App,
    tmp_path: Path,
) -> None:
    app = sms_app
    import_members(app, tmp_path)
    announcement_id = approved(app, to=("web-borgholm", TARGET, "web-morbylanga"))
    dispatch_revision(app, "kommunikator", announcement_id)
    with app.store.read() as conn:
        targets = get_announcement(conn, announcement_id).revision.content.targets
    assert TARGET in targets and len(targets) == 3
    # In the revision's order of targets, the list's members where its target stands.
    expected = [
        (target, number) for target in targets for number in (LISTED if target == TARGET else ("",))
    ]
    rows = created(app, announcement_id)
    assert [(row["target"], row["recipient"]) for row in rows] == expected
    assert [row["job"] is None for row in rows] == [number in OPTED for _, number in expected]


def test_the_preview_counts_the_list_without_its_opted_out_members(
    sms_app: App, tmp_path: Path
) -> None:
    app = sms_app
    import_members(app, tmp_path)
    announcement_id = approved(app, to=(TARGET,))
    with app.store.read() as conn:
        announcement = get_announcement(conn, announcement_id)
    (target,) = preview_announcement(app, announcement).targets
    assert target.sms is not None
    # Five members (one listed twice), two of them opted out; the stranger is on no list.
    assert target.sms.recipients == len(LISTED) - len(OPTED)
    assert target.sms.list_name == LIST
