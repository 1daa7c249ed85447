"""Counts over the store's tables for monitoring (``/metrics``): read-only, one GROUP BY each.

Nothing here names a person or a recipient: only channels, states and decision kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, case, func, select

from broadcaster.model import DeliveryState
from broadcaster.store.deliveries import PURGED_PREFIX
from broadcaster.store.schema import approvals, deliveries

__all__ = ["DecisionCount", "DeliveryCount", "decision_counts", "delivery_counts"]


@dataclass(frozen=True, kw_only=True)
class DeliveryCount:
    """How many deliveries of one channel are in one state."""

    channel: str
    state: str
    count: int
    #: Of those, how many are dead letters (dead and not purged: ``broadcaster deadletters``).
    dead_letters: int


@dataclass(frozen=True, kw_only=True)
class DecisionCount:
    """How many approval decisions of one kind were made one way (``cli``, ``teams``)."""

    decision: str
    via: str
    count: int


def delivery_counts(conn: Connection) -> list[DeliveryCount]:
    """Deliveries per channel and state, with the dead letters among them; one table scan."""
    dead_letter = (deliveries.c.state == DeliveryState.DEAD) & ~deliveries.c.recipient.startswith(
        PURGED_PREFIX
    )
    rows = conn.execute(
        select(
            deliveries.c.channel,
            deliveries.c.state,
            func.count(),
            func.coalesce(func.sum(case((dead_letter, 1), else_=0)), 0),
        )
        .group_by(deliveries.c.channel, deliveries.c.state)
        .order_by(deliveries.c.channel, deliveries.c.state)
    )
    return [
        DeliveryCount(channel=channel, state=state, count=int(count), dead_letters=int(dead))
        for channel, state, count, dead in rows
    ]


def decision_counts(conn: Connection) -> list[DecisionCount]:
    """Approval decisions per decision (``approve``, ``reject``) and way (``cli``, ``teams``)."""
    rows = conn.execute(
        select(approvals.c.decision, approvals.c.via, func.count())
        .group_by(approvals.c.decision, approvals.c.via)
        .order_by(approvals.c.decision, approvals.c.via)
    )
    return [
        DecisionCount(decision=decision, via=via, count=int(count)) for decision, via, count in rows
    ]
