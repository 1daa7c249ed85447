"""Approval cards posted in Teams (owner of ``approval_cards``): where each is, and turns.

One row per announcement. Card jobs of one announcement take turns (:func:`take_turn`): the job
holding the turn reads the announcement, talks to Teams and writes what it did
(:func:`finish_turn`); a job whose turn lapsed (its worker died) is overtaken after ``until``.
So an older state is never written over a newer one, and the card is posted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from broadcaster.store.schema import approval_cards
from broadcaster.store.sql import insert_or_ignore

__all__ = ["PostedCard", "card_of", "finish_turn", "take_turn"]


@dataclass(frozen=True, kw_only=True)
class PostedCard:
    """An announcement's card: where it was posted (None until it was) and what it shows."""

    announcement_id: int
    revision: int | None
    service_url: str | None
    conversation_id: str | None
    activity_id: str | None
    digest: str | None
    told_author: str | None

    @property
    def posted(self) -> bool:
        """True once Teams has the card (it can be updated)."""
        return bool(self.activity_id and self.conversation_id and self.service_url)


def card_of(conn: Connection, announcement_id: int) -> PostedCard | None:
    """The announcement's card, or None when none was ever asked for."""
    row = conn.execute(
        select(approval_cards).where(approval_cards.c.announcement_id == announcement_id)
    ).first()
    if row is None:
        return None
    return PostedCard(
        announcement_id=row.announcement_id,
        revision=row.revision,
        service_url=row.service_url,
        conversation_id=row.conversation_id,
        activity_id=row.activity_id,
        digest=row.digest,
        told_author=row.told_author,
    )


def take_turn(
    conn: Connection, announcement_id: int, job_id: int, until: datetime, now: datetime
) -> PostedCard | None:
    """Make job ``job_id`` the one acting on the card until ``until``; None: another job is.

    The row is created on the first turn (nothing posted yet).
    """
    insert_or_ignore(
        conn,
        approval_cards,
        {
            "announcement_id": announcement_id,
            "busy_job": job_id,
            "busy_until": until,
            "created_at": now,
            "updated_at": now,
        },
    )
    query = select(approval_cards.c.busy_job, approval_cards.c.busy_until).where(
        approval_cards.c.announcement_id == announcement_id
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    busy_job, busy_until = conn.execute(query).one()
    if busy_job is not None and busy_job != job_id and busy_until is not None and busy_until > now:
        return None
    conn.execute(
        update(approval_cards)
        .where(approval_cards.c.announcement_id == announcement_id)
        .values(busy_job=job_id, busy_until=until, updated_at=now)
    )
    return card_of(conn, announcement_id)


def finish_turn(
    conn: Connection,
    announcement_id: int,
    job_id: int,
    now: datetime,
    *,
    changes: dict[str, object],
) -> bool:
    """Write what job ``job_id`` did to the card and end its turn; False if it lost the turn."""
    allowed = {"revision", "service_url", "conversation_id", "activity_id", "digest", "told_author"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not a card column: {', '.join(sorted(unknown))}")
    result = conn.execute(
        update(approval_cards)
        .where(
            approval_cards.c.announcement_id == announcement_id,
            approval_cards.c.busy_job == job_id,
        )
        .values(**changes, busy_job=None, busy_until=None, updated_at=now)
    )
    return bool(result.rowcount)
