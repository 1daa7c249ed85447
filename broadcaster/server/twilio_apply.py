"""Applying verified Twilio status callbacks to deliveries, many in one transaction.

A burst of callbacks (26,000 messages each report ``sent`` and then ``delivered``) arrives in
parallel; on SQLite one transaction per callback would queue every request behind the single
write lock. The route hands each callback to a :class:`~broadcaster.queue.batching.Batcher`, and
:func:`apply_batch` writes all that arrived meanwhile in one transaction and a few statements:
read the deliveries, claim the idempotency tokens (a retry by Twilio is applied once), record
the statuses that move a delivery forward (never back: see
:data:`~broadcaster.store.deliveries.PLATFORM_STATUS_RANK`). Refusals are audited in the same
batch, so a flood of forged requests costs as few transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.config import SmsTarget
from broadcaster.model import ChannelName
from broadcaster.store.audit import record_event
from broadcaster.store.callbacks import claim_tokens, forget_tokens_before
from broadcaster.store.deliveries import (
    Delivery,
    PlatformStatus,
    get_deliveries,
    platform_status_applies,
    record_platform_statuses,
)

__all__ = ["ENDPOINT", "Outcome", "Refusal", "StatusReport", "apply_batch"]

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


_OTHER_SIGNER = "signed with the secret of another SMS target than the delivery's"


class TokenPruning:
    """When a server last forgot old idempotency tokens: once an hour, those over two days old.

    Twilio retries a callback for a few hours at most, so a token older than that protects
    nothing; kept, they would grow by every status of every recipient of every send.
    """

    KEEP = timedelta(hours=48)
    EVERY = timedelta(hours=1)

    def __init__(self) -> None:
        self._next: datetime | None = None

    def cutoff(self, now: datetime) -> datetime | None:
        """Forget tokens received before this (None: not due yet)."""
        if self._next is not None and now < self._next:
            return None
        self._next = now + self.EVERY
        return now - self.KEEP


def apply_batch(
    app: App, items: Sequence[StatusReport | Refusal], pruning: TokenPruning | None = None
) -> list[Outcome]:
    """Apply (or audit) ``items`` in one transaction; one outcome per item, in order.

    With ``pruning``, tokens too old to protect against a retry are forgotten when it is due.
    """
    now = app.clock()
    sms_targets = {t.id for t in app.config.targets if isinstance(t, SmsTarget)}
    outcomes: list[Outcome] = [Outcome.REFUSED] * len(items)
    with app.store.write() as conn:
        reports = [(n, item) for n, item in enumerate(items) if isinstance(item, StatusReport)]
        known = get_deliveries(conn, {report.delivery_id for _, report in reports})
        refused = [item for item in items if isinstance(item, Refusal)]
        accepted: list[tuple[int, StatusReport]] = []
        for n, report in reports:
            found = known.get(report.delivery_id)
            target = found.target if found is not None else None
            # Signed with some configured account's secret, but not the one this delivery was
            # sent from: whoever holds that other secret must not speak for these deliveries.
            if target in sms_targets and target not in report.signers:
                refused.append(_refusal(report))
            else:
                accepted.append((n, report))
        fresh = claim_tokens(conn, [r.token for _, r in accepted if r.token is not None], now)
        changes = _Changes(known)
        for n, report in accepted:
            if report.token is not None and report.token not in fresh:
                outcomes[n] = Outcome.DUPLICATE
                continue
            fresh.discard(report.token or "")  # the same token again in this batch: a retry
            outcomes[n] = changes.add(report)
        changes.write(conn, now)
        for refusal in refused:
            _audit_refusal(conn, refusal, now)
        cutoff = pruning.cutoff(now) if pruning is not None else None
        if cutoff is not None:
            forget_tokens_before(conn, cutoff)
    return outcomes


class _Changes:
    """The statuses of one batch that move a delivery forward, applied in arrival order."""

    def __init__(self, known: dict[int, Delivery]) -> None:
        self.current = dict(known)
        self.latest: dict[int, PlatformStatus] = {}

    def add(self, report: StatusReport) -> Outcome:
        delivery = self.current.get(report.delivery_id)
        if delivery is None or delivery.channel != ChannelName.SMS:
            return Outcome.IGNORED  # purged, or never ours: nothing to record, nothing to retry
        status = PlatformStatus(
            delivery_id=delivery.id,
            sid=report.message_sid,
            status=report.status,
            error_code=report.error_code,
        )
        if not platform_status_applies(delivery, status):
            return Outcome.IGNORED
        self.current[delivery.id] = replace(
            delivery, platform_status=status.status, platform_error=status.error_code
        )
        self.latest[delivery.id] = status
        return Outcome.APPLIED

    def write(self, conn: Connection, now: datetime) -> None:
        # Only each delivery's last step is written, in ascending delivery order: two servers
        # on one PostgreSQL database lock rows in the same order and never deadlock. The UPDATE
        # checks the rank again, so a report another server overtook meanwhile is not applied.
        record_platform_statuses(conn, [self.latest[key] for key in sorted(self.latest)], now)


def _refusal(report: StatusReport) -> Refusal:
    return Refusal(client_ip=report.client_ip, reason=_OTHER_SIGNER, delivery_id=report.delivery_id)


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
