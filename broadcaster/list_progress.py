"""Progress of per-recipient targets (SMS lists) for ``status``: counts, never rows.

A list of 26,000 people is 26,000 deliveries. ``status`` reads them as the few rows of one
grouped query (:func:`~broadcaster.store.deliveries.recipient_groups`) and shows, per target:

* in ``deliveries``, one entry per revision, summarising its recipients: ``recipients`` (how
  many), ``states`` (how many in each delivery state) and a ``state`` for the whole, the one that
  most needs attention (:func:`summary_state`); ``id``, ``platform_id`` and ``last_error`` are
  null, as no single delivery speaks for the list;
* in ``lists``, the counts of the newest revision sent to it, a partition of its recipients:
  ``recipients = sent + delivered + failed + pending + opted_out + cancelled``.

The recipients themselves are shown only when asked for, and only the failed ones
(:func:`failed_json`, ``status ID --target T --failed``), with their numbers masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from broadcaster.model import DeliveryState
from broadcaster.privacy import mask_phone, mask_phone_numbers
from broadcaster.store.deliveries import (
    PURGED_PREFIX,
    RECIPIENT_OUTCOMES,
    Delivery,
    RecipientGroup,
)

__all__ = [
    "failed_json",
    "list_counts",
    "masked_recipient",
    "recipient_entries",
    "summary_state",
]

_S = DeliveryState
# While anything is unfinished, the busiest state speaks for the list; once all is final, the
# worst. A list with pending deliveries and finished ones is between two batches: sending.
_ACTIVE = (_S.SENDING, _S.RETRYING, _S.UNKNOWN)
_SETTLED = (_S.DEAD, _S.SENT, _S.CANCELLED)


def summary_state(states: Mapping[str, int]) -> str:
    """One delivery state for a list of recipients: ``sending``, ``retrying`` or ``unknown``
    while any delivery is in it (in that order); ``pending`` while nothing has started; then
    ``dead`` if any died, else ``sent`` if any was sent, else ``cancelled``."""
    present = {state for state, count in states.items() if count}
    for state in _ACTIVE:
        if state in present:
            return str(state)
    if _S.PENDING in present:
        return str(_S.SENDING if present & set(_SETTLED) else _S.PENDING)
    return next((str(state) for state in _SETTLED if state in present), str(_S.PENDING))


def recipient_entries(
    groups: Iterable[RecipientGroup], revisions: Mapping[int, int]
) -> list[tuple[int, dict[str, Any]]]:
    """One ``deliveries`` entry per (revision, target), with the id of its first delivery (to
    sort it among the one-per-target deliveries, in creation order)."""
    merged: dict[tuple[int, str], list[RecipientGroup]] = {}
    for group in groups:
        merged.setdefault((group.revision_id, group.target), []).append(group)
    entries = []
    for (revision_id, target), parts in merged.items():
        states: dict[str, int] = {}
        for part in parts:
            states[str(part.state)] = states.get(str(part.state), 0) + part.count
        entries.append(
            (
                min(part.first_id for part in parts),
                {
                    "id": None,
                    "target": target,
                    "channel": parts[0].channel,
                    "revision": revisions.get(revision_id),
                    "state": summary_state(states),
                    # The most attempts any one recipient's delivery took.
                    "attempts": max(part.max_attempts for part in parts),
                    "platform_id": None,
                    "last_error": None,
                    "next_attempt_at": _iso(_earliest(p.next_attempt_at for p in parts)),
                    "sent_at": _iso(_latest(p.last_sent_at for p in parts)),
                    "recipients": sum(states.values()),
                    "states": dict(sorted(states.items())),
                },
            )
        )
    return entries


def list_counts(
    groups: Iterable[RecipientGroup], revisions: Mapping[int, int]
) -> dict[str, dict[str, Any]]:
    """``{target: {"revision", "recipients", "sent", "delivered", "failed", "pending",
    "opted_out", "cancelled"}}`` for the newest revision sent to each per-recipient target."""
    by_target: dict[str, list[RecipientGroup]] = {}
    for group in groups:
        by_target.setdefault(group.target, []).append(group)
    lists: dict[str, dict[str, Any]] = {}
    for target, parts in sorted(by_target.items()):
        newest = max(part.revision_id for part in parts)
        counts = dict.fromkeys(RECIPIENT_OUTCOMES, 0)
        for part in parts:
            if part.revision_id == newest:
                counts[part.outcome] += part.count
        lists[target] = {
            "revision": revisions.get(newest),
            "recipients": sum(counts.values()),
            **counts,
        }
    return lists


def masked_recipient(recipient: str) -> str:
    """A recipient as output may show it: masked, or ``(purged)`` once its number is gone."""
    return "(purged)" if recipient.startswith(PURGED_PREFIX) else mask_phone(recipient)


def failed_json(delivery: Delivery) -> dict[str, Any]:
    """One failed recipient: masked number, state, what the platform reported, the error."""
    return {
        "delivery_id": delivery.id,
        "number": masked_recipient(delivery.recipient),
        "state": str(delivery.state),
        # What the platform reported after accepting it (undelivered, failed), if it did.
        "platform_status": delivery.platform_status,
        "error_code": delivery.platform_error,
        "last_error": mask_phone_numbers(delivery.last_error) if delivery.last_error else None,
        "attempts": delivery.attempts,
        "updated_at": _iso(delivery.platform_status_at or delivery.updated_at),
    }


def _earliest(moments: Iterable[datetime | None]) -> datetime | None:
    return min((m for m in moments if m is not None), default=None)


def _latest(moments: Iterable[datetime | None]) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
