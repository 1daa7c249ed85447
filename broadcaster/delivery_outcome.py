"""What one delivery attempt came to (owner of no table): the delivery's next state and the job's.

:func:`classify` turns an adapter's answer — a receipt or a :class:`ChannelError` — into a
:class:`DeliveryOutcome` (what the delivery row becomes, tied to the attempt that produced it)
and the job's :class:`Settlement` (done, dead, or queued again after a backoff).

A :class:`~broadcaster.errors.RecipientOptedOut` (Twilio 21610: the person replied STOP) is not a
failure: the delivery is cancelled as opted out, the job is done, and the outcome carries the
number so that the runner puts it on the opt-out list in the same transaction.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from broadcaster.errors import (
    ChannelError,
    PermanentError,
    RateLimited,
    RateScope,
    RecipientOptedOut,
    TransientError,
)
from broadcaster.errors import UnknownOutcome as Unknown
from broadcaster.limits import TargetLimits
from broadcaster.model import CancelReason, DeliveryState, Receipt
from broadcaster.privacy import mask_phone_numbers
from broadcaster.queue.jobs import Job, JobState, Settlement
from broadcaster.queue.retry import RetryPolicy
from broadcaster.store.deliveries import UNFINISHED, Delivery, DeliveryUpdate

__all__ = ["AFTER_SEND", "AFTER_VERIFY", "DeliveryOutcome", "Outcome", "classify"]

Outcome = Receipt | ChannelError

#: What a delivery must still be for the outcome of a send to apply.
AFTER_SEND = (DeliveryState.SENDING,)
#: ... of a verification after an earlier attempt that may have arrived.
AFTER_VERIFY = (DeliveryState.SENDING, DeliveryState.UNKNOWN)


@dataclass(frozen=True, kw_only=True)
class DeliveryOutcome:
    """The new state of one delivery, and what else comes with it."""

    delivery_id: int
    announcement_id: int | None
    revision_id: int | None
    target: str
    expected: tuple[DeliveryState, ...]
    attempt: int | None
    state: DeliveryState
    platform_id: str | None = None
    #: The rest of the receipt (what editing or deleting the post later needs).
    receipt_data: Mapping[str, str | int] | None = None
    error: str | None = None
    #: Seconds until the next attempt (retrying, unknown).
    retry_in: float | None = None
    #: The platform asked every worker to pause this target this long ...
    pause: float | None = None
    #: ... or, with RateScope.CHANNEL, every target of its channel.
    pause_scope: RateScope = RateScope.TARGET
    #: Why the delivery is cancelled unsent (with ``state`` cancelled).
    cancel_reason: CancelReason | None = None
    #: A number the platform says opted out, for the opt-out list (never in a repr or a log).
    opted_out_number: str | None = field(default=None, repr=False)

    def update(self, now: datetime) -> DeliveryUpdate:
        """The attempt-tied row update for the store."""
        next_at = now + timedelta(seconds=self.retry_in) if self.retry_in is not None else None
        return DeliveryUpdate(
            delivery_id=self.delivery_id,
            expected=self.expected,
            attempt=self.attempt,
            state=self.state,
            platform_id=self.platform_id,
            receipt_data=self.receipt_data,
            error=self.error,
            next_attempt_at=next_at,
            cancel_reason=self.cancel_reason,
        )


def classify(
    job: Job,
    delivery: Delivery,
    outcome: Outcome,
    *,
    policy: RetryPolicy,
    rng: random.Random,
    now: datetime,
    limits: TargetLimits | None = None,
    attempt: int | None = None,
    expected: tuple[DeliveryState, ...] = UNFINISHED,
) -> Settlement:
    """The settlement of ``job`` for ``outcome``; ``attempt`` is set when this run sent."""
    attempts = attempt if attempt is not None else delivery.attempts
    base: dict[str, Any] = {
        "delivery_id": delivery.id,
        "announcement_id": delivery.announcement_id,
        "revision_id": delivery.revision_id,
        "target": delivery.target,
        "expected": expected,
        "attempt": attempts,
    }
    if isinstance(outcome, Receipt):
        # The receipt of a send and of a verification alike: both are kept, in one update.
        result = DeliveryOutcome(
            **base,
            state=DeliveryState.SENT,
            platform_id=outcome.platform_id,
            receipt_data=dict(outcome.data),
        )
        return Settlement(job_id=job.id, state=JobState.DONE, outcome=result)
    # A platform's answer may quote the recipient's number; it is stored, listed and logged,
    # so it is masked here, where the text enters broadcaster's records.
    error = mask_phone_numbers(f"{type(outcome).__name__}: {outcome}")
    if isinstance(outcome, RecipientOptedOut):
        # Before the permanent errors it is one of: the person said no, nothing failed.
        result = DeliveryOutcome(
            **base,
            state=DeliveryState.CANCELLED,
            error=error,
            cancel_reason=CancelReason.OPTED_OUT,
            opted_out_number=delivery.recipient or None,
        )
        return Settlement(job_id=job.id, state=JobState.DONE, outcome=result)
    give_up = _exhausted(delivery, attempts, now, limits)
    if isinstance(outcome, PermanentError) or not outcome.retryable or give_up:
        if give_up and not isinstance(outcome, PermanentError):
            error = f"{give_up} — last error: {error}"
        result = DeliveryOutcome(**base, state=DeliveryState.DEAD, error=error)
        return Settlement(job_id=job.id, state=JobState.DEAD, error=error, outcome=result)
    if isinstance(outcome, Unknown):
        delay, state = policy.verify_after_seconds, DeliveryState.UNKNOWN
    else:
        retry_after = outcome.retry_after if isinstance(outcome, TransientError) else None
        delay, state = policy.delay(attempts, retry_after, rng), DeliveryState.RETRYING
    pause = outcome.retry_after if isinstance(outcome, RateLimited) else None
    scope = outcome.scope if isinstance(outcome, RateLimited) else RateScope.TARGET
    result = DeliveryOutcome(
        **base, state=state, error=error, retry_in=delay, pause=pause, pause_scope=scope
    )
    return Settlement(
        job_id=job.id, state=JobState.QUEUED, delay=delay, error=error, outcome=result
    )


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
