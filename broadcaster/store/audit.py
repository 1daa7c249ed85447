"""The append-only audit log: who did what, when. Nothing here updates or deletes a row."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from broadcaster.store.schema import audit_events

__all__ = ["AuditEvent", "list_events", "record_event"]


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    """One thing that happened."""

    id: int
    at: datetime
    actor: str
    action: str
    announcement_id: int | None
    revision: int | None
    details: dict[str, Any]


def record_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    now: datetime,
    announcement_id: int | None = None,
    revision: int | None = None,
    **details: Any,
) -> None:
    """Append an event in the caller's transaction, so it commits (or not) with the change."""
    conn.execute(
        audit_events.insert().values(
            at=now,
            actor=actor,
            action=action,
            announcement_id=announcement_id,
            revision=revision,
            details=details,
        )
    )


def list_events(
    conn: Connection,
    announcement_id: int | None = None,
    *,
    actions: Collection[str] | None = None,
) -> list[AuditEvent]:
    """Events in the order they happened, all or for one announcement (or of some actions)."""
    query = select(audit_events).order_by(audit_events.c.id)
    if announcement_id is not None:
        query = query.where(audit_events.c.announcement_id == announcement_id)
    if actions is not None:
        query = query.where(audit_events.c.action.in_(list(actions)))
    return [
        AuditEvent(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            announcement_id=row.announcement_id,
            revision=row.revision,
            details=dict(row.details),
        )
        for row in conn.execute(query)
    ]
