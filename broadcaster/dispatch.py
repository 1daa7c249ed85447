"""Dispatch (the fan-out of an approved revision): deliveries and jobs in, announcement settled.

:func:`dispatch_revision` writes the state change and every delivery and job in one transaction,
with set-based inserts, so a crash can never leave an announcement "dispatching" with nothing
queued, and 26,000 SMS recipients cost a few statements rather than 52,000.
:func:`finish_dispatch` marks the announcement sent or partially failed once nothing is left;
the worker calls it once per batch of outcomes, not once per delivery.

Per-recipient channels list every member of the target's list; a member on the opt-out list gets
a delivery too, created ``cancelled`` (``opted_out``) with no job, so ``status`` can say how many
opted out. A delivery cancelled for an opt-out is not a failure. A channel that names its list
(SMS: ``Channel.recipient_list``) has those deliveries copied from the list in the database, so
the numbers never pass through this process: 250,000 of them once cost ``send`` 330 MB.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.approval_card_queue import queue_card
from broadcaster.config import Config
from broadcaster.errors import InputError, RenderError, StateError
from broadcaster.model import Announcement, AnnouncementState, DeliveryState, check_transition
from broadcaster.preview import preview_announcement
from broadcaster.queue.jobs import JobKind, enqueue_revision
from broadcaster.recipients import RecipientLists
from broadcaster.store.announcements import (
    get_announcement,
    lock_state,
    revision_number,
    set_state,
)
from broadcaster.store.approval_cards import card_of
from broadcaster.store.audit import record_event
from broadcaster.store.deliveries import (
    ListDeliveries,
    NewDelivery,
    create_deliveries,
    failed_targets,
    has_unfinished,
    opted_out_count,
    state_counts,
)

__all__ = ["dispatch_in", "dispatch_revision", "finish_dispatch"]


def dispatch_revision(
    app: App, actor: str, announcement_id: int, *, at: datetime | None = None
) -> Announcement:
    """Queue the approved revision for every one of its targets (now, or at ``at``)."""
    with app.store.read() as conn:
        seen = get_announcement(conn, announcement_id)
    check_transition(seen.state, AnnouncementState.DISPATCHING)
    # Render every target first: a template error is found here, not first by the worker.
    problems = preview_announcement(app, seen).problems()
    if problems:
        raise RenderError("cannot send while the preview has errors:\n" + "\n".join(problems))
    now = app.clock()
    run_at = max(at, now) if at is not None else now
    with app.store.write() as conn:
        current = get_announcement(conn, announcement_id, lock=True)
        if current.revision.number != seen.revision.number or current.state != seen.state:
            raise StateError(f"announcement {announcement_id} changed meanwhile; look again")
        dispatch_in(app, conn, current, actor, run_at=run_at, now=now)
        return get_announcement(conn, announcement_id)


def dispatch_in(
    app: App,
    conn: Connection,
    current: Announcement,
    actor: str,
    *,
    run_at: datetime,
    now: datetime,
    **details: Any,
) -> None:
    """The fan-out of ``current`` (approved, its row locked by the caller) on ``conn``.

    The caller's transaction is the one that commits it: an approval that completes the policy
    sends in the same transaction as the decision (``[approval] send_on_approval``), so two
    approvers clicking at once cannot both enqueue it. ``details`` go into the audit event.
    """
    check_transition(current.state, AnnouncementState.DISPATCHING)
    announcement_id = current.id
    revision = current.revision
    rows = _fan_out(app, conn, revision.content.targets)
    created = create_deliveries(
        conn, announcement_id=announcement_id, revision_id=revision.id, rows=rows, now=now
    )
    enqueue_revision(
        conn,
        revision_id=revision.id,
        kind=JobKind.DELIVER,
        run_at=run_at,
        priority=revision.content.severity.priority,
        now=now,
    )
    set_state(conn, announcement_id, current.state, AnnouncementState.DISPATCHING, now)
    record_event(
        conn,
        actor=actor,
        action="dispatched",
        now=now,
        announcement_id=announcement_id,
        revision=revision.number,
        content_hash=revision.content_hash,
        targets=list(revision.content.targets),
        deliveries=created.deliveries,
        opted_out=created.opted_out,
        run_at=run_at.isoformat(),
        **details,
    )
    if created.opted_out:
        # Every recipient may have opted out: then no job exists to settle it later.
        finish_dispatch(conn, announcement_id, revision.id, now, actor=actor, config=app.config)


def _fan_out(
    app: App, conn: Connection, target_ids: Sequence[str]
) -> list[NewDelivery | ListDeliveries]:
    """What to create, in target order: a row per target, or per recipient where the channel
    messages people (a whole list, when the channel names it, copied in the database)."""
    directory = RecipientLists(conn)
    rows: list[NewDelivery | ListDeliveries] = []
    for target_id in target_ids:
        target = app.config.target(target_id)
        if target is None:  # the configuration was reloaded between preview and now
            raise InputError(f"target {target_id!r} is no longer in the configuration")
        adapter = app.registry.adapter_for(target)
        list_name = adapter.recipient_list(target)
        if list_name is not None:
            list_id = directory.list_id(list_name)
            rows.append(ListDeliveries(target=target_id, channel=target.channel, list_id=list_id))
            continue
        rows += [
            NewDelivery(target=target_id, channel=target.channel, recipient=recipient)
            for recipient in adapter.recipients(target, directory)
        ]
    return rows


def finish_dispatch(
    conn: Connection,
    announcement_id: int,
    revision_id: int,
    now: datetime,
    *,
    actor: str = "worker",
    config: Config | None = None,
) -> None:
    """Mark a dispatching announcement sent or partially failed once every delivery is final.

    Deliveries cancelled because their recipient opted out count as neither sent nor failed.
    With ``config``, an approval card in Teams is then updated to say so.
    """
    # Lock the announcement before looking at its deliveries: two workers finishing deliveries
    # at once would otherwise each see the other's as unfinished (READ COMMITTED) and neither
    # settles. The worker calls this once per batch, so it stays cheap for a list of thousands:
    # an indexed "is anything unfinished?" probe, and the counts only when nothing is.
    if lock_state(conn, announcement_id) != AnnouncementState.DISPATCHING:
        return
    if has_unfinished(conn, revision_id):
        return
    counts = state_counts(conn, revision_id)
    if not counts:
        return
    failed = failed_targets(conn, revision_id)
    outcome = AnnouncementState.PARTIALLY_FAILED if failed else AnnouncementState.SENT
    set_state(conn, announcement_id, AnnouncementState.DISPATCHING, outcome, now)
    if config is not None and card_of(conn, announcement_id) is not None:
        queue_card(conn, config, announcement_id, now)
    record_event(
        conn,
        actor=actor,
        action=str(outcome),
        now=now,
        announcement_id=announcement_id,
        revision=revision_number(conn, revision_id),
        delivered=counts.get(DeliveryState.SENT, 0),
        opted_out=opted_out_count(conn, revision_id) if DeliveryState.CANCELLED in counts else 0,
        failed=failed,
    )
