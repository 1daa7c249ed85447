"""When an announcement's approval card in Teams must be posted or brought up to date.

The card is posted and updated by the worker (an ``approval_card`` job), never by the command or
the click that changed the announcement: Teams may be down or slow, and ``submit`` or a decision
must neither fail nor wait for it. The job is added in the transaction that made the change, so
a change and the card job that shows it commit together.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from broadcaster.config import Config
from broadcaster.queue.jobs import JobKind, enqueue_for_announcement

__all__ = ["CARD_PRIORITY", "cards_enabled", "queue_card"]

#: Card jobs run before any delivery: the approvers are waiting for the card.
CARD_PRIORITY = 0


def cards_enabled(config: Config) -> bool:
    """True when approval cards go to Teams: a ``[teams_bot]`` and ``teams_channel_id``."""
    return config.teams_bot is not None and bool(config.approval.teams_channel_id)


def queue_card(conn: Connection, config: Config, announcement_id: int, now: datetime) -> bool:
    """Have the worker post or update the announcement's card; False when cards are off."""
    if not cards_enabled(config):
        return False
    enqueue_for_announcement(
        conn,
        kind=JobKind.APPROVAL_CARD,
        announcement_id=announcement_id,
        priority=CARD_PRIORITY,
        now=now,
    )
    return True
