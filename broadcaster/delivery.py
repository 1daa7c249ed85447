"""Running one delivery job: guard, (verify,) send, classify, record.

The order is what keeps a delivery from being lost or posted twice:

1. Read the delivery; if it is already final (sent, dead, cancelled) do nothing.
2. If an earlier attempt may have reached the platform (state ``unknown``, or ``sending`` left
   behind by a worker that died), ask the platform first where it can tell; where it cannot,
   resend only if the channel says a blind resend is harmless.
3. Mark the delivery ``sending`` and commit *before* calling the platform.
4. Call the adapter with no database transaction open (calls can take seconds).
5. Record the outcome, the job's next step and the announcement's state in one transaction,
   and only while this worker still holds the job's lease.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broadcaster.app import App
from broadcaster.channels.base import Channel, Receipt
from broadcaster.dispatch import settle
from broadcaster.errors import (
    BroadcastError,
    ChannelError,
    InputError,
    PermanentError,
    QueueError,
    TransientError,
    UnknownOutcome,
)
from broadcaster.model import DeliveryState
from broadcaster.queue.jobs import Job, finish, reschedule
from broadcaster.queue.retry import RetryPolicy
from broadcaster.rendering.message import Message
from broadcaster.store.announcements import get_announcement, get_revision_by_id
from broadcaster.store.deliveries import (
    Delivery,
    first_delivery_time,
    get_delivery,
    update_delivery,
)
from broadcaster.store.schema import deliveries

__all__ = ["DeliveryRunner"]

log = logging.getLogger("broadcaster.delivery")

Outcome = Receipt | ChannelError


class _LeaseLost(Exception):
    """Raised inside a transaction to roll it back when the job's lease is no longer ours."""


@dataclass(frozen=True)
class _Work:
    delivery: Delivery
    message: Message
    uncertain: bool  # an earlier attempt may have reached the platform


class DeliveryRunner:
    """The handler for ``deliver`` jobs; one per worker, caching one adapter per target."""

    def __init__(
        self,
        app: App,
        owner: str,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.owner = owner
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._adapters: dict[str, Channel] = {}

    async def __call__(self, job: Job) -> None:
        """Run one claimed job to its next state."""
        try:
            work = await asyncio.to_thread(self._load, job)
        except InputError as exc:  # the target or its adapter is gone from the configuration
            await asyncio.to_thread(self._record_dead_on_load, job, str(exc))
            return
        if work is None:
            return
        try:
            adapter = self._adapter(work.message)
        except InputError as exc:
            await asyncio.to_thread(self._record, job, work.delivery, PermanentError("?", str(exc)))
            return
        outcome = await self._attempt(job, work, adapter)
        if outcome is not None:
            await asyncio.to_thread(self._record, job, work.delivery, outcome, adapter)

    async def aclose(self) -> None:
        """Close every adapter this runner built."""
        for adapter in self._adapters.values():
            await adapter.aclose()
        self._adapters.clear()

    async def _attempt(self, job: Job, work: _Work, adapter: Channel) -> Outcome | None:
        if work.uncertain:
            if adapter.can_verify:
                try:
                    receipt = await adapter.verify(work.message)
                except ChannelError as exc:
                    return exc
                if receipt is not None:
                    return receipt
            elif not adapter.blind_resend_ok:
                return PermanentError(
                    adapter.name,
                    "an earlier attempt may have been posted and this platform cannot be asked; "
                    "check by hand, then `broadcaster deadletters --retry` if it is missing",
                )
        marked = await asyncio.to_thread(self._mark_sending, job, work.delivery)
        if not marked:
            return None
        return await self._send(adapter, work.message)

    async def _send(self, adapter: Channel, message: Message) -> Outcome:
        try:
            rendered = adapter.prepare(message)
            if rendered.problems:
                return PermanentError(adapter.name, "; ".join(rendered.problems))
            return await adapter.send(message, rendered)
        except ChannelError as exc:
            return exc
        except BroadcastError as exc:  # e.g. RenderError: templates changed since preview
            return PermanentError(adapter.name, str(exc))
        except Exception as exc:
            # A bug or an unmapped library error: the request may or may not have gone out,
            # so treat it as unknown (verified before any resend), never as a silent success.
            log.exception("unexpected error from the %s adapter", adapter.name)
            return UnknownOutcome(adapter.name, f"unexpected error: {type(exc).__name__}: {exc}")

    def _adapter(self, message: Message) -> Channel:
        target = message.target
        if target.id not in self._adapters:
            self._adapters[target.id] = self.app.registry.create(target, self.app.channel_context())
        return self._adapters[target.id]

    def _load(self, job: Job) -> _Work | None:
        now = self.app.clock()
        with self.app.store.write() as conn:
            delivery = get_delivery(conn, _delivery_id(job))
            if delivery.state.is_final:
                # Idempotency guard: a delivery that is sent (or given up) is never sent again.
                finish(conn, job.id, self.owner, now)
                return None
            announcement = get_announcement(conn, delivery.announcement_id)
            revision = get_revision_by_id(conn, delivery.revision_id)
            first = first_delivery_time(conn, delivery.announcement_id, delivery.target)
        message = Message.for_target(
            self.app.config,
            uid=announcement.uid,
            revision=revision,
            target_id=delivery.target,
            published_at=first,
            updated_at=delivery.created_at,
        )
        uncertain = delivery.state == DeliveryState.UNKNOWN or (
            delivery.state == DeliveryState.SENDING and job.reclaimed
        )
        return _Work(delivery=delivery, message=message, uncertain=uncertain)

    def _mark_sending(self, job: Job, delivery: Delivery) -> bool:
        now = self.app.clock()
        with self.app.store.write() as conn:
            return update_delivery(
                conn,
                delivery.id,
                now,
                expected=(
                    DeliveryState.PENDING,
                    DeliveryState.RETRYING,
                    DeliveryState.UNKNOWN,
                    DeliveryState.SENDING,
                ),
                state=DeliveryState.SENDING,
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=None,
            )

    def _record(
        self, job: Job, delivery: Delivery, outcome: Outcome, adapter: Channel | None = None
    ) -> None:
        try:
            state = self._record_in_transaction(job, delivery, outcome, adapter)
        except _LeaseLost:
            # Our lease expired and another worker owns the job now; it verifies before sending.
            log.warning(
                "lost the lease on job %s; leaving delivery %s to its new owner",
                job.id,
                delivery.id,
            )
            return
        log.info("delivery %s to %s: %s", delivery.id, delivery.target, state)

    def _record_in_transaction(
        self, job: Job, delivery: Delivery, outcome: Outcome, adapter: Channel | None
    ) -> DeliveryState:
        now = self.app.clock()
        with self.app.store.write() as conn:
            fresh = get_delivery(conn, delivery.id)
            values, run_at = self._classify(fresh, outcome, now, adapter)
            if run_at is None:
                held = finish(
                    conn,
                    job.id,
                    self.owner,
                    now,
                    dead=values["state"] == DeliveryState.DEAD,
                    error=values.get("last_error"),
                )
            else:
                held = reschedule(
                    conn, job.id, self.owner, now, run_at=run_at, error=values["last_error"]
                )
            if not held:
                raise _LeaseLost
            update_delivery(conn, delivery.id, now, **values)
            settle(conn, delivery.announcement_id, delivery.revision_id, now)
        return DeliveryState(values["state"])

    def _classify(
        self, delivery: Delivery, outcome: Outcome, now: datetime, adapter: Channel | None
    ) -> tuple[dict[str, Any], datetime | None]:
        """The delivery's new columns and, for a retry, when to run again."""
        if isinstance(outcome, Receipt):
            return {
                "state": DeliveryState.SENT,
                "platform_id": outcome.platform_id,
                "sent_at": now,
                "last_error": None,
                "next_attempt_at": None,
            }, None
        error = f"{type(outcome).__name__}: {outcome}"
        give_up = self._exhausted(delivery, now, adapter)
        if isinstance(outcome, PermanentError) or not outcome.retryable or give_up:
            if give_up and not isinstance(outcome, PermanentError):
                error = f"{give_up} — last error: {error}"
            return {"state": DeliveryState.DEAD, "last_error": error, "next_attempt_at": None}, None
        if isinstance(outcome, UnknownOutcome):
            run_at = now + timedelta(seconds=self.policy.verify_after_seconds)
            return {
                "state": DeliveryState.UNKNOWN,
                "last_error": error,
                "next_attempt_at": run_at,
            }, run_at
        retry_after = outcome.retry_after if isinstance(outcome, TransientError) else None
        delay = self.policy.delay(delivery.attempts, retry_after, self.rng)
        run_at = now + timedelta(seconds=delay)
        return {
            "state": DeliveryState.RETRYING,
            "last_error": error,
            "next_attempt_at": run_at,
        }, run_at

    def _exhausted(self, delivery: Delivery, now: datetime, adapter: Channel | None) -> str:
        if adapter is None:
            return ""
        if delivery.attempts >= adapter.max_attempts:
            return f"gave up after {delivery.attempts} attempts"
        age = (now - delivery.created_at).total_seconds()
        if age > adapter.max_age_seconds:
            return f"gave up: the delivery is {age / 3600:.1f} h old"
        return ""

    def _record_dead_on_load(self, job: Job, reason: str) -> None:
        with self.app.store.read() as conn:
            delivery = get_delivery(conn, _delivery_id(job))
        self._record(job, delivery, PermanentError(delivery.channel, reason))


def _delivery_id(job: Job) -> int:
    if job.delivery_id is None:
        raise QueueError(f"deliver job {job.id} names no delivery")
    return job.delivery_id
