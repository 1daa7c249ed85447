"""Running delivery jobs (owner of no table; writes through store/ and queue/): guard, limit,
verify, mark, send, classify — the order that keeps a delivery from being lost or sent twice.

1. Read the delivery (batched with the other jobs starting now); if it is final, do nothing.
2. If an earlier attempt may have reached the platform (state ``unknown``, or ``sending`` left by
   a worker that died or was stopped mid-call), ask the platform first where it can tell; where
   it cannot, resend only if the channel says a blind resend is harmless.
3. Take a rate slot shared with every other worker; one too far away defers the job (not an
   attempt) and pauses the target's claims in this worker.
4. Mark the delivery ``sending`` and commit *before* calling the platform — only while this
   worker still holds the job's lease, so a worker that was stopped and overtaken never sends.
   A delivery whose recipient is on the opt-out list by now is cancelled instead, in the same
   transaction, and never sent.
5. Call the adapter with no transaction open, under the lease's deadline: a send, or for a
   correction or retraction an edit or removal of what the earlier revision posted.
6. Return a settlement; its outcome is written in the worker's next batch, tied to the attempt:
   a late result is recorded, a stale one never overwrites a newer attempt, and the
   announcement is settled once per batch. A platform's "this person opted out" cancels the
   delivery and puts the number on the opt-out list in that same transaction.

The runner is also the worker's :class:`~broadcaster.queue.worker.Capacity`: it knows each
target's concurrency and pauses, so the worker claims only what can start.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.channels.base import Channel, Rendered
from broadcaster.delivery_outcome import (
    AFTER_SEND,
    AFTER_VERIFY,
    DeliveryOutcome,
    Outcome,
    classify,
)
from broadcaster.delivery_work import Work, WorkLoader
from broadcaster.dispatch import finish_dispatch
from broadcaster.errors import (
    BroadcastError,
    ChannelError,
    InputError,
    PermanentError,
    RateScope,
)
from broadcaster.errors import UnknownOutcome as Unknown
from broadcaster.limits import TargetLimits, limits_for
from broadcaster.model import DeliveryState
from broadcaster.privacy import mask_phone
from broadcaster.queue.batching import Batcher
from broadcaster.queue.jobs import Job, JobState, Settlement
from broadcaster.queue.lease import Lease
from broadcaster.queue.ratelimit import RateKey, Slot, push_back, reserve_many
from broadcaster.queue.retry import RetryPolicy
from broadcaster.queue.worker import handler_failure
from broadcaster.rendering.message import Message
from broadcaster.store.audit import record_event
from broadcaster.store.database import is_unavailable
from broadcaster.store.deliveries import Delivery, mark_sending, record_updates, revisions_of
from broadcaster.store.recipients import add_opt_outs

__all__ = ["DeliveryRunner", "SendObserver"]

log = logging.getLogger("broadcaster.delivery")

#: Told of every platform call a send made: the channel's name and the seconds it took
#: (``/metrics`` keeps them in a histogram). Called on the event loop; it must not block.
SendObserver = Callable[[str, float], None]

_RETRYABLE = (
    DeliveryState.PENDING,
    DeliveryState.RETRYING,
    DeliveryState.UNKNOWN,
    DeliveryState.SENDING,
)


class DeliveryRunner:
    """The handler of ``deliver`` jobs; one per worker, caching one adapter per target."""

    def __init__(
        self,
        app: App,
        owner: str,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        on_send: SendObserver | None = None,
    ) -> None:
        self.app = app
        self.owner = owner
        self.on_send = on_send
        queue = app.config.queue
        self.policy = policy or RetryPolicy(
            base_seconds=queue.retry_base_seconds, cap_seconds=queue.retry_cap_seconds
        )
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        # Longest a job may wait for its rate slot while holding its lease.
        self.max_wait = timedelta(seconds=min(30.0, queue.lease_seconds / 4))
        self._adapters: dict[str, Channel] = {}
        self._limits: dict[str, TargetLimits] = {}
        self._rendered: dict[tuple[int, str, datetime], asyncio.Future[Rendered]] = {}
        self._paused_until: dict[str, float] = {}
        loader = WorkLoader(app.store, lambda: app.config)
        self._loads: Batcher[int, Work | None] = Batcher(loader.load)
        self._marks: Batcher[int, int | None] = Batcher(self._mark_sending)
        self._slots: Batcher[tuple[RateKey, ...], Slot] = Batcher(self._reserve)

    # -- the worker's Capacity --------------------------------------------------------------

    def targets(self) -> Collection[str]:
        """Every configured target (claims ask for each by name)."""
        return [target.id for target in self.app.config.targets]

    def room(self, target: str | None, busy: Mapping[str | None, int]) -> int:
        """How many more jobs of ``target`` this worker may run, given its jobs per target."""
        limits = self._limits_of(target)
        if limits is None:
            return self.app.config.queue.max_in_flight
        free = limits.concurrency - busy.get(target, 0)
        configured = self.app.config.target(target or "")
        if limits.channel_in_flight is not None and configured is not None:
            siblings = [t.id for t in self.app.config.targets if t.channel == configured.channel]
            in_channel = sum(busy.get(t, 0) for t in siblings)
            free = min(free, limits.channel_in_flight - in_channel)
        return max(0, free)

    def paused(self, target: str) -> bool:
        """True while the target's next rate slot is known to be far off."""
        until = self._paused_until.get(target)
        return until is not None and until > asyncio.get_running_loop().time()

    # -- running one job --------------------------------------------------------------------

    async def __call__(self, job: Job, lease: Lease) -> Settlement:
        """Run one claimed job to its next state."""
        try:
            return await self._handle(job, lease)
        except Exception as exc:
            if is_unavailable(exc):
                raise  # the worker defers the job (nothing was sent) until the database is back
            log.exception("delivery job %s failed in broadcaster itself", job.id)
            return self._crashed(job, exc)

    async def _handle(self, job: Job, lease: Lease) -> Settlement:
        if job.delivery_id is None:
            return Settlement(job_id=job.id, state=JobState.DEAD, error="the job names no delivery")
        work = await self._loads(job.delivery_id)
        if work is None or work.delivery.state.is_final:  # the idempotency guard
            return Settlement(job_id=job.id, state=JobState.DONE)
        delivery = work.delivery
        refusal = self._refusal(job, work)
        if refusal is not None or work.message is None:
            reason = refusal or work.problem or "cannot be delivered"
            return self._settle(job, delivery, PermanentError(delivery.channel, reason))
        message = work.message
        try:
            adapter = self._adapter(message)
        except InputError as exc:
            return self._settle(job, delivery, PermanentError(delivery.channel, str(exc)))
        limits = self._limits_of(delivery.target) or limits_for(
            self.app.config, message.target, type(adapter)
        )
        if delivery.state in (DeliveryState.UNKNOWN, DeliveryState.SENDING):
            early = await self._resolve_uncertain(adapter, message, lease, delivery.id)
            if early is not None:
                return self._settle(job, delivery, early, limits, expected=AFTER_VERIFY)
        return await self._attempt(job, delivery, message, adapter, limits, lease)

    async def _attempt(
        self,
        job: Job,
        delivery: Delivery,
        message: Message,
        adapter: Channel,
        limits: TargetLimits,
        lease: Lease,
    ) -> Settlement:
        rendered = await self._prepared(adapter, message, delivery)
        if rendered.problems:
            problem = PermanentError(adapter.name, "; ".join(rendered.problems))
            return self._settle(job, delivery, problem, limits)
        if limits.rate_keys:
            slot = await self._slots(limits.rate_keys)
            if not slot.reserved:
                self._paused_until[delivery.target] = _loop_time() + slot.wait
                return _deferred(job, slot.wait)
            await asyncio.sleep(slot.wait)
        if lease.remaining() <= 0:  # the wait outlasted what the lease allows: try again soon
            return _deferred(job, 0.0)
        attempt = await self._marks(delivery.id)
        if attempt is None:  # changed or opted out meanwhile, or another worker holds the job
            return Settlement(job_id=job.id, state=JobState.DONE)
        outcome = await self._send(adapter, message, rendered, lease)
        return self._settle(job, delivery, outcome, limits, attempt=attempt, expected=AFTER_SEND)

    def _refusal(self, job: Job, work: Work) -> str | None:
        maximum = self.app.config.queue.max_reclaims
        if job.reclaims < maximum:
            return None
        return (
            f"taken over {job.reclaims} times from workers that stopped while holding it (it "
            "may be what stops them); it may have been sent — check by hand, then "
            f"`broadcaster deadletters --retry {work.delivery.id}`"
        )

    async def _resolve_uncertain(
        self, adapter: Channel, message: Message, lease: Lease, delivery_id: int
    ) -> Outcome | None:
        """After an attempt that may have arrived: the verified outcome, or None to send."""
        if adapter.can_verify:
            try:
                async with lease.deadline(adapter.call_timeout()):
                    return await adapter.verify(message)
            except TimeoutError:
                return Unknown(adapter.name, "the platform did not answer whether it has it")
            except ChannelError as exc:
                if isinstance(exc, PermanentError) or not exc.retryable:
                    return exc
                # The platform could not be asked (down, throttled): the delivery stays
                # uncertain and is asked again later. As `retrying` it would be sent blindly.
                return Unknown(adapter.name, f"could not ask whether it arrived: {exc.message}")
        if adapter.blind_resend_ok:
            return None
        return PermanentError(
            adapter.name,
            f"an earlier attempt may have been posted and {adapter.name} cannot be asked: "
            f"look in {adapter.where_posted()}, and only if the post is missing run "
            f"`broadcaster deadletters --retry {delivery_id}`",
        )

    async def _send(
        self, adapter: Channel, message: Message, rendered: Rendered, lease: Lease
    ) -> Outcome:
        started = time.perf_counter()
        try:
            async with lease.deadline(adapter.call_timeout()):
                return await adapter.deliver(message, rendered)
        except TimeoutError:
            # Cut off by the deadline (the adapter's own, or the lease's): it may have arrived.
            return Unknown(adapter.name, "no answer before the deadline; it may have arrived")
        except ChannelError as exc:
            return exc
        except BroadcastError as exc:  # e.g. RenderError: templates changed since preview
            return PermanentError(adapter.name, str(exc))
        except Exception as exc:
            # A bug or an unmapped library error: the request may or may not have gone out,
            # so treat it as unknown (verified before any resend), never as a silent success.
            log.exception("unexpected error from the %s adapter", adapter.name)
            return Unknown(adapter.name, f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self._observe(adapter.name, time.perf_counter() - started)

    def _observe(self, channel: str, seconds: float) -> None:
        if self.on_send is None:
            return
        try:
            self.on_send(channel, seconds)
        except Exception:
            # Counting must never change what happened to a delivery (the call is made).
            log.exception("the send observer failed; the delivery is not affected")

    async def _prepared(self, adapter: Channel, message: Message, delivery: Delivery) -> Rendered:
        # Rendering reads templates (and for the website the site): off the event loop, once
        # per revision and target, however many recipients share it — also when they all ask
        # at the same moment (they share the one rendering in progress).
        key = (delivery.revision_id, delivery.target, delivery.created_at)
        rendering = self._rendered.get(key)
        if rendering is None:
            if len(self._rendered) > 256:
                self._rendered.clear()
            rendering = asyncio.ensure_future(asyncio.to_thread(adapter.prepare, message))
            self._rendered[key] = rendering
        try:
            return await asyncio.shield(rendering)
        except Exception:
            self._rendered.pop(key, None)  # a failed rendering is tried again next time
            raise

    def _adapter(self, message: Message) -> Channel:
        target = message.target
        if target.id not in self._adapters:
            self._adapters[target.id] = self.app.registry.create(target, self.app.channel_context())
        return self._adapters[target.id]

    def _limits_of(self, target: str | None) -> TargetLimits | None:
        if target is None:
            return None
        if target not in self._limits:
            configured = self.app.config.target(target)
            if configured is None:
                return None
            try:
                adapter = self.app.registry.adapter_for(configured)
            except InputError:
                adapter = Channel  # type: ignore[type-abstract]  # its defaults; dead on run
            self._limits[target] = limits_for(self.app.config, configured, adapter)
        return self._limits[target]

    def _settle(
        self,
        job: Job,
        delivery: Delivery,
        outcome: Outcome,
        limits: TargetLimits | None = None,
        *,
        attempt: int | None = None,
        expected: tuple[DeliveryState, ...] = _RETRYABLE,
    ) -> Settlement:
        settlement = classify(
            job,
            delivery,
            outcome,
            policy=self.policy,
            rng=self.rng,
            now=self.app.clock(),
            limits=limits,
            attempt=attempt,
            expected=expected,
        )
        result = settlement.outcome
        if isinstance(result, DeliveryOutcome) and result.pause:
            until = _loop_time() + result.pause
            for target in self._paused_targets(result):
                self._paused_until[target] = until
        return settlement

    def _paused_targets(self, outcome: DeliveryOutcome) -> list[str]:
        """The targets a rate limit covers: this one, or every target of its channel."""
        configured = self.app.config.target(outcome.target)
        if outcome.pause_scope != RateScope.CHANNEL or configured is None:
            return [outcome.target]
        return [t.id for t in self.app.config.targets if t.channel == configured.channel]

    def _crashed(self, job: Job, error: BaseException) -> Settlement:
        failure = handler_failure(job, error, self.app.config.queue.max_handler_errors)
        if failure.state != JobState.DEAD or job.delivery_id is None:
            return failure
        # The delivery goes to the dead letters with the job, where a person sees it.
        outcome = DeliveryOutcome(
            delivery_id=job.delivery_id,
            announcement_id=None,
            revision_id=None,
            target=job.target or "",
            expected=_RETRYABLE,
            attempt=None,
            state=DeliveryState.DEAD,
            error=failure.error,
        )
        return Settlement(
            job_id=job.id, state=JobState.DEAD, error=failure.error, failed=True, outcome=outcome
        )

    # -- writing (in the worker's settlement transaction) -----------------------------------

    def record(self, conn: Connection, settlements: Sequence[Settlement], now: datetime) -> None:
        """Write the deliveries' outcomes, pause rate-limited targets, settle announcements."""
        outcomes = [s.outcome for s in settlements if isinstance(s.outcome, DeliveryOutcome)]
        if not outcomes:
            return
        record_updates(conn, [o.update(now) for o in outcomes], now)
        _record_opt_outs(conn, outcomes, now)
        for outcome in outcomes:
            if outcome.pause:
                # The platform asked us to slow down: every worker pauses this target (or, for
                # a limit on the whole app, every target of the channel).
                until = now + timedelta(seconds=outcome.pause)
                for target in self._paused_targets(outcome):
                    push_back(conn, f"target:{target}", until)
        pairs = {
            (o.announcement_id, o.revision_id)
            for o in outcomes
            if o.announcement_id is not None and o.revision_id is not None
        }
        unknown = [o.delivery_id for o in outcomes if o.revision_id is None]
        if unknown:
            pairs |= revisions_of(conn, unknown)
        for announcement_id, revision_id in sorted(pairs):
            finish_dispatch(conn, announcement_id, revision_id, now, config=self.app.config)
        states = Counter(str(o.state) for o in outcomes)
        log.debug("recorded %s", ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
        for outcome in outcomes:
            if outcome.state != DeliveryState.SENT:
                log.info(
                    "delivery %s to %s: %s (%s)",
                    outcome.delivery_id,
                    outcome.target,
                    outcome.state,
                    outcome.error,
                )

    # -- batched database calls (run in threads) --------------------------------------------

    def _mark_sending(self, delivery_ids: Sequence[int]) -> list[int | None]:
        with self.app.store.write() as conn:
            now = self.app.queue_clock(conn)
            marked = mark_sending(
                conn, delivery_ids, expected=_RETRYABLE, lease_owner=self.owner, now=now
            )
            if marked.opted_out:
                # Cancelled here, not sent: no outcome follows, so if these were the last of
                # their announcement's deliveries, it is settled now, with the cancellation.
                for announcement_id, revision_id in sorted(revisions_of(conn, marked.opted_out)):
                    finish_dispatch(conn, announcement_id, revision_id, now, config=self.app.config)
        for delivery_id in marked.opted_out:
            log.info("delivery %s cancelled: its recipient opted out before it went", delivery_id)
        return [marked.attempts.get(delivery_id) for delivery_id in delivery_ids]

    def _reserve(self, requests: Sequence[tuple[RateKey, ...]]) -> list[Slot]:
        with self.app.store.write() as conn:
            return reserve_many(conn, requests, self.app.queue_clock(conn), self.max_wait)

    async def aclose(self) -> None:
        """Finish batched calls in flight and close every adapter this runner built."""
        for batcher in (self._loads, self._marks, self._slots):
            await batcher.aclose()
        for adapter in self._adapters.values():
            await adapter.aclose()
        self._adapters.clear()


def _record_opt_outs(conn: Connection, outcomes: Sequence[DeliveryOutcome], now: datetime) -> None:
    """Put the numbers the platform reported opted out on the opt-out list, each audited with
    the number masked (who stopped texts, and why, stays traceable without the number)."""
    for outcome in outcomes:
        number = outcome.opted_out_number
        if number is None:
            continue
        # Even when the outcome itself came too late to apply: the platform's word stands.
        added = add_opt_outs(conn, [number], now)
        record_event(
            conn,
            actor="worker",
            action="opted_out",
            now=now,
            announcement_id=outcome.announcement_id,
            number=mask_phone(number),
            target=outcome.target,
            delivery=outcome.delivery_id,
            reason="the platform refused it: the recipient has opted out (replied STOP)",
            already=not added,
        )


def _deferred(job: Job, seconds: float) -> Settlement:
    """Back to the queue in ``seconds``; not an attempt (nothing was sent)."""
    return Settlement(job_id=job.id, state=JobState.QUEUED, delay=seconds, attempted=False)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()
