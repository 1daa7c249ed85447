"""Applying verified Twilio status callbacks to deliveries, many in one transaction.

A burst of callbacks (26,000 messages each report ``sent`` and then ``delivered``) arrives in
parallel; on SQLite one transaction per callback would queue every request behind the single
write lock. The route hands each callback to a :class:`~broadcaster.queue.batching.Batcher`, and
:func:`apply_batch` writes all that arrived meanwhile in one transaction: per callback, claim its
idempotency token (a retry by Twilio is applied once), then record the status, which never moves
a delivery backwards (:data:`~broadcaster.store.deliveries.PLATFORM_STATUS_RANK`). Refusals are
audited in the same batch, so a flood of forged requests costs as few transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.config import SmsTarget
from broadcaster.model import ChannelName
from broadcaster.store.audit import record_event
from broadcaster.store.callbacks import claim_token
from broadcaster.store.deliveries import Delivery, get_deliveries, record_platform_status

__all__ = ["Outcome", "Refusal", "StatusReport", "apply_batch"]

ENDPOINT = "/twilio/status"


class Outcome(StrEnum):
    """What became of one callback."""

    APPLIED = "applied"
    #: Authentic, but it changes nothing: an older status, another message, an unknown delivery.
    IGNORED = "ignored"
    #: Its idempotency token was seen before: Twilio retried a callback already applied.
    DUPLICATE = "duplicate"
    #: Not signed by the account the delivery was sent from (audited; nothing else changes).
    REFUSED = "refused"


@dataclass(frozen=True, kw_only=True)
class StatusReport:
    """A status callback whose signature is valid for ``signers`` (SMS target ids)."""

    delivery_id: int
    message_sid: str
    status: str
    error_code: int | None
    #: ``I-Twilio-Idempotency-Token`` (None: not sent, so not de-duplicated by token).
    token: str | None
    signers: frozenset[str]
    client_ip: str


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """A request refused before it reached the database, to be audited."""

    client_ip: str
    reason: str
    delivery_id: int | None


def apply_batch(app: App, items: Sequence[StatusReport | Refusal]) -> list[Outcome]:
    """Apply (or audit) ``items`` in one transaction; one outcome per item, in order."""
    now = app.clock()
    sms_targets = {t.id for t in app.config.targets if isinstance(t, SmsTarget)}
    outcomes: list[Outcome] = [Outcome.REFUSED] * len(items)
    # Rows in ascending delivery order: two servers on one PostgreSQL database then lock them
    # in the same order and never deadlock. The sort is stable, so callbacks about one delivery
    # keep the order they arrived in.
    order = sorted(range(len(items)), key=lambda n: items[n].delivery_id or 0)
    with app.store.write() as conn:
        ids = {item.delivery_id for item in items if isinstance(item, StatusReport)}
        found = get_deliveries(conn, ids)
        for n in order:
            item = items[n]
            if isinstance(item, Refusal):
                _audit_refusal(conn, item, now)
            else:
                outcomes[n] = _apply(conn, item, found.get(item.delivery_id), sms_targets, now)
    return outcomes


def _apply(
    conn: Connection,
    report: StatusReport,
    delivery: Delivery | None,
    sms_targets: set[str],
    now: datetime,
) -> Outcome:
    # Signed with some configured account's secret, but not the one this delivery was sent
    # from: whoever holds that other secret must not speak for these deliveries.
    target = delivery.target if delivery is not None else None
    if target in sms_targets and target not in report.signers:
        reason = "signed with the secret of another SMS target than the delivery's"
        refusal = Refusal(client_ip=report.client_ip, reason=reason, delivery_id=report.delivery_id)
        _audit_refusal(conn, refusal, now)
        return Outcome.REFUSED
    if report.token is not None and not claim_token(conn, report.token, now):
        return Outcome.DUPLICATE
    if delivery is None or delivery.channel != ChannelName.SMS:
        return Outcome.IGNORED  # purged, or never ours: nothing to record, nothing to retry
    applied = record_platform_status(
        conn, delivery.id, report.message_sid, report.status, report.error_code, now
    )
    return Outcome.APPLIED if applied else Outcome.IGNORED


def _audit_refusal(conn: Connection, refusal: Refusal, now: datetime) -> None:
    where: dict[str, Any] = {} if refusal.delivery_id is None else {"delivery": refusal.delivery_id}
    record_event(
        conn,
        actor="unauthenticated",
        action="callback_refused",
        now=now,
        endpoint=ENDPOINT,
        client_ip=refusal.client_ip,
        reason=refusal.reason,
        **where,
    )
