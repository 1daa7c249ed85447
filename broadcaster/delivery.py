"""Running one delivery job: guard, limit, (verify,) send, classify.

The order is what keeps a delivery from being lost or posted twice:

1. Read the delivery; if it is already final (sent, dead, cancelled) do nothing.
2. Respect the target's limits: at most ``concurrency`` sends at once in this worker, and a
   reserved rate slot shared with every other worker. A job that would wait too long goes back
   to the queue for later, without counting as an attempt.
3. If an earlier attempt may have reached the platform (state ``unknown``, or ``sending`` left by
   a worker that died or was stopped mid-call), ask the platform first where it can tell; where
   it cannot, resend only if the channel says a blind resend is harmless.
4. Mark the delivery ``sending`` and commit *before* calling the platform.
5. Call the adapter with no database transaction open (calls can take seconds).
6. Return a settlement: the delivery's new state, the job's next step and the announcement's
   state are then written in one transaction, only while this worker still holds the lease.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.channels.base import Channel, Receipt
from broadcaster.dispatch import settle
from broadcaster.errors import (
    BroadcastError,
    ChannelError,
    InputError,
    PermanentError,
    RateLimited,
    TransientError,
    UnknownOutcome,
)
from broadcaster.limits import TargetLimits, channel_in_flight, limits_for
from broadcaster.model import DeliveryState
from broadcaster.queue.jobs import Job, JobState, Settlement
from broadcaster.queue.ratelimit import Slot, push_back, reserve
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
_RETRYABLE = (
    DeliveryState.PENDING,
    DeliveryState.RETRYING,
    DeliveryState.UNKNOWN,
    DeliveryState.SENDING,
)


@dataclass(frozen=True)
class _Work:
    delivery: Delivery
    message: Message


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
        queue = app.config.queue
        self.policy = policy or RetryPolicy(
            base_seconds=queue.retry_base_seconds, cap_seconds=queue.retry_cap_seconds
        )
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        # Longest a job may wait for its rate slot while holding its lease.
        self.max_wait = timedelta(seconds=min(30.0, queue.lease_seconds / 4))
        self._adapters: dict[str, Channel] = {}
        self._limits: dict[str, TargetLimits] = {}
        self._busy: Counter[str] = Counter()
        self._busy_channels: Counter[str] = Counter()
        # (announcement, target) -> when it was first dispatched there; never changes once set.
        self._first_sent: dict[tuple[int, str], datetime] = {}

    def saturated_targets(self) -> set[str]:
        """Targets this worker may not start another send to right now."""
        full = {
            target
            for target, count in self._busy.items()
            if target in self._limits and count >= self._limits[target].concurrency
        }
        for channel, count in self._busy_channels.items():
            limit = channel_in_flight(self.app.config, channel)
            if limit is not None and count >= limit:
                full.update(t.id for t in self.app.config.targets if t.channel == channel)
        return full

    async def __call__(self, job: Job) -> Settlement:
        """Run one claimed job to its next state."""
        target = job.target or ""
        configured = self.app.config.target(target)
        channel = configured.channel if configured else ""
        self._busy[target] += 1
        self._busy_channels[channel] += 1
        try:
            return await self._handle(job)
        finally:
            self._busy[target] -= 1
            self._busy_channels[channel] -= 1

    async def aclose(self) -> None:
        """Close every adapter this runner built."""
        for adapter in self._adapters.values():
            await adapter.aclose()
        self._adapters.clear()

    async def _handle(self, job: Job) -> Settlement:
        if job.delivery_id is None:
            return Settlement(job_id=job.id, state=JobState.DEAD, error="the job names no delivery")
        try:
            work = await asyncio.to_thread(self._load, job.delivery_id)
        except InputError as exc:  # e.g. the target is gone from the configuration
            return await asyncio.to_thread(self._dead_on_load, job, job.delivery_id, str(exc))
        if work is None:  # already final: the idempotency guard
            return Settlement(job_id=job.id, state=JobState.DONE)
        try:
            adapter = self._adapter(work.message)
        except InputError as exc:
            return self._settlement(job, work.delivery, PermanentError("?", str(exc)))
        limits = self._limits_for(work.message, adapter)
        over_channel = (
            limits.channel_in_flight is not None
            and self._busy_channels[work.delivery.channel] > limits.channel_in_flight
        )
        if self._busy[work.delivery.target] > limits.concurrency or over_channel:
            return self._defer(job, self.app.clock())
        return await self._attempt(job, work, adapter, limits)

    async def _attempt(
        self, job: Job, work: _Work, adapter: Channel, limits: TargetLimits
    ) -> Settlement:
        if work.delivery.state in (DeliveryState.UNKNOWN, DeliveryState.SENDING):
            early = await self._resolve_uncertain(adapter, work.message)
            if early is not None:
                return self._settlement(job, work.delivery, early, limits)
        if limits.rate_keys:
            slot = await asyncio.to_thread(self._reserve, limits)
            if not slot.reserved:
                return self._defer(job, slot.at)
            await _sleep_until(slot.at, self.app.clock)
        if not await asyncio.to_thread(self._mark_sending, work.delivery):
            return Settlement(job_id=job.id, state=JobState.DONE)  # changed meanwhile
        outcome = await self._send(adapter, work.message)
        return self._settlement(job, work.delivery, outcome, limits, attempted=True)

    async def _resolve_uncertain(self, adapter: Channel, message: Message) -> Outcome | None:
        """After an attempt that may have arrived: the verified outcome, or None to send."""
        if adapter.can_verify:
            try:
                return await adapter.verify(message)
            except ChannelError as exc:
                return exc
        if adapter.blind_resend_ok:
            return None
        return PermanentError(
            adapter.name,
            "an earlier attempt may have been posted and this platform cannot be asked; "
            "check by hand, then `broadcaster deadletters --retry` if it is missing",
        )

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

    def _limits_for(self, message: Message, adapter: Channel) -> TargetLimits:
        target = message.target
        if target.id not in self._limits:
            self._limits[target.id] = limits_for(self.app.config, target, type(adapter))
        return self._limits[target.id]

    def _load(self, delivery_id: int) -> _Work | None:
        with self.app.store.read() as conn:
            delivery = get_delivery(conn, delivery_id)
            if delivery.state.is_final:
                return None
            announcement = get_announcement(conn, delivery.announcement_id)
            revision = get_revision_by_id(conn, delivery.revision_id)
            key = (delivery.announcement_id, delivery.target)
            if key not in self._first_sent:
                self._first_sent[key] = first_delivery_time(conn, *key)
            first = self._first_sent[key]
        message = Message.for_target(
            self.app.config,
            uid=announcement.uid,
            revision=revision,
            target_id=delivery.target,
            published_at=first,
            updated_at=delivery.created_at,
            recipient=delivery.recipient,
        )
        return _Work(delivery=delivery, message=message)

    def _reserve(self, limits: TargetLimits) -> Slot:
        with self.app.store.write() as conn:
            return reserve(conn, limits.rate_keys, self.app.clock(), self.max_wait)

    def _mark_sending(self, delivery: Delivery) -> bool:
        with self.app.store.write() as conn:
            return update_delivery(
                conn,
                delivery.id,
                self.app.clock(),
                expected=_RETRYABLE,
                state=DeliveryState.SENDING,
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=None,
            )

    def _defer(self, job: Job, run_at: datetime) -> Settlement:
        """Back to the queue until ``run_at``; not an attempt (nothing was sent)."""
        return Settlement(job_id=job.id, state=JobState.QUEUED, run_at=run_at, attempted=False)

    def _settlement(
        self,
        job: Job,
        delivery: Delivery,
        outcome: Outcome,
        limits: TargetLimits | None = None,
        *,
        attempted: bool = False,
    ) -> Settlement:
        now = self.app.clock()
        attempts = delivery.attempts + (1 if attempted else 0)
        values, run_at = self._classify(delivery, attempts, outcome, now, limits)
        state = DeliveryState(values["state"])
        job_state = (
            JobState.QUEUED
            if run_at is not None
            else JobState.DEAD
            if state == DeliveryState.DEAD
            else JobState.DONE
        )
        pause = (
            outcome.retry_after
            if isinstance(outcome, RateLimited) and outcome.retry_after
            else None
        )

        def apply(conn: Connection) -> None:
            update_delivery(conn, delivery.id, now, **values)
            if pause is not None:
                # The platform asked us to slow down: every worker pauses this target.
                push_back(conn, f"target:{delivery.target}", now + timedelta(seconds=pause))
            settle(conn, delivery.announcement_id, delivery.revision_id, now)
            log.info("delivery %s to %s: %s", delivery.id, delivery.target, state)

        error = values.get("last_error")
        return Settlement(job_id=job.id, state=job_state, run_at=run_at, error=error, apply=apply)

    def _classify(
        self,
        delivery: Delivery,
        attempts: int,
        outcome: Outcome,
        now: datetime,
        limits: TargetLimits | None,
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
        give_up = _exhausted(delivery, attempts, now, limits)
        if isinstance(outcome, PermanentError) or not outcome.retryable or give_up:
            if give_up and not isinstance(outcome, PermanentError):
                error = f"{give_up} — last error: {error}"
            return {"state": DeliveryState.DEAD, "last_error": error, "next_attempt_at": None}, None
        if isinstance(outcome, UnknownOutcome):
            run_at = now + timedelta(seconds=self.policy.verify_after_seconds)
            state = DeliveryState.UNKNOWN
        else:
            retry_after = outcome.retry_after if isinstance(outcome, TransientError) else None
            run_at = now + timedelta(seconds=self.policy.delay(attempts, retry_after, self.rng))
            state = DeliveryState.RETRYING
        return {"state": state, "last_error": error, "next_attempt_at": run_at}, run_at

    def _dead_on_load(self, job: Job, delivery_id: int, reason: str) -> Settlement:
        with self.app.store.read() as conn:
            delivery = get_delivery(conn, delivery_id)
        return self._settlement(job, delivery, PermanentError(delivery.channel, reason))


def _exhausted(
    delivery: Delivery, attempts: int, now: datetime, limits: TargetLimits | None
) -> str:
    if limits is None:
        return ""
    if attempts >= limits.max_attempts:
        return f"gave up after {attempts} attempts"
    age = now - (delivery.age_from or delivery.created_at)
    if age > limits.max_age:
        return f"gave up: the delivery is {age.total_seconds() / 3600:.1f} h old"
    return ""


async def _sleep_until(moment: datetime, clock: Any) -> None:
    delay = (moment - clock()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)
