"""Reading many deliveries at once (owner of no table): each job's delivery and its message.

The worker's jobs ask for their deliveries at the same moment; :class:`WorkLoader` answers a
whole batch with a few queries and builds each delivery's :class:`Message` from a cache, since
the thousands of deliveries of one SMS dispatch share one revision and differ only in recipient.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from broadcaster.config import Config
from broadcaster.errors import InputError
from broadcaster.model import Receipt, Revision
from broadcaster.rendering.message import Message
from broadcaster.store.announcements import revisions_with_uids
from broadcaster.store.database import Store
from broadcaster.store.deliveries import (
    Delivery,
    first_delivery_times,
    get_deliveries,
    previous_receipts,
)

__all__ = ["Work", "WorkLoader"]

_CACHE_SIZE = 256


@dataclass(frozen=True)
class Work:
    """One delivery as read, with its message (or why it cannot have one)."""

    delivery: Delivery
    message: Message | None
    problem: str | None = None


class WorkLoader:
    """Loads deliveries in batches; one per worker (its caches belong to that worker)."""

    def __init__(self, store: Store, config: Callable[[], Config]) -> None:
        self.store = store
        self.config = config
        # (announcement, target) -> when it was first dispatched there; never changes once set.
        self._first: dict[tuple[int, str], datetime] = {}
        self._messages: dict[tuple[int, str, datetime], Message] = {}

    def load(self, delivery_ids: Sequence[int]) -> list[Work | None]:
        """The work of each delivery id (None for one that does not exist), in order."""
        with self.store.read() as conn:
            found = get_deliveries(conn, delivery_ids)
            unfinished = [d for d in found.values() if not d.state.is_final]
            missing = {(d.announcement_id, d.target) for d in unfinished} - self._first.keys()
            self._first.update(first_delivery_times(conn, missing))
            wanted = {d.revision_id for d in unfinished}
            revisions = revisions_with_uids(conn, wanted) if wanted else {}
            previous = _previous(conn, unfinished, revisions)
        if len(self._messages) > _CACHE_SIZE:
            self._messages.clear()
        return [
            self._work(found[i], revisions, previous.get(i)) if i in found else None
            for i in delivery_ids
        ]

    def _work(
        self,
        delivery: Delivery,
        revisions: dict[int, tuple[Revision, str]],
        previous: Receipt | None = None,
    ) -> Work:
        if delivery.state.is_final:
            return Work(delivery, None)
        key = (delivery.revision_id, delivery.target, delivery.created_at)
        base = self._messages.get(key)
        if base is None:
            revision, uid = revisions[delivery.revision_id]
            try:
                base = Message.for_target(
                    self.config(),
                    uid=uid,
                    revision=revision,
                    target_id=delivery.target,
                    published_at=self._first[(delivery.announcement_id, delivery.target)],
                    updated_at=delivery.created_at,
                )
            except InputError as exc:  # e.g. the target is gone from the configuration
                return Work(delivery, None, str(exc))
            self._messages[key] = base
        own = dataclasses.replace(
            base, recipient=delivery.recipient, previous=previous, delivery_id=delivery.id
        )
        return Work(delivery, own)


def _previous(
    conn: Connection,
    unfinished: Sequence[Delivery],
    revisions: dict[int, tuple[Revision, str]],
) -> dict[int, Receipt]:
    """Delivery id -> the receipt an earlier revision left on its target (one query a batch)."""
    keys = {
        d.id: (d.announcement_id, d.target, d.recipient, revisions[d.revision_id][0].number)
        for d in unfinished
        if d.revision_id in revisions and revisions[d.revision_id][0].number > 1
    }
    if not keys:  # first revisions, the usual case: nothing was posted before
        return {}
    found = previous_receipts(conn, set(keys.values()))
    return {delivery_id: found[key] for delivery_id, key in keys.items() if key in found}
