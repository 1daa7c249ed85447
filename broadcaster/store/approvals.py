"""Approval decisions: one per person per revision, bound to the revision's content hash."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from broadcaster.store.schema import approvals
from broadcaster.store.sql import insert_or_ignore

__all__ = ["Decision", "change_decision", "decisions_for", "record_decision"]


@dataclass(frozen=True, kw_only=True)
class Decision:
    """One person's approve or reject of one revision."""

    person: str
    decision: str
    reason: str | None
    via: str
    content_hash: str
    decided_at: datetime
    #: How the person was shown to be who they said (None: recorded before proofs existed).
    proof: dict[str, Any] | None = None


def record_decision(
    conn: Connection,
    *,
    revision_id: int,
    person: str,
    decision: str,
    reason: str | None,
    via: str,
    content_hash: str,
    now: datetime,
    proof: Mapping[str, Any] | None = None,
) -> bool:
    """Store a decision; False when this person already decided on this revision."""
    return insert_or_ignore(
        conn,
        approvals,
        {
            "revision_id": revision_id,
            "person": person,
            "decision": decision,
            "reason": reason,
            "via": via,
            "content_hash": content_hash,
            "decided_at": now,
            "proof": dict(proof) if proof is not None else None,
        },
    )


def change_decision(
    conn: Connection,
    *,
    revision_id: int,
    person: str,
    decision: str,
    reason: str | None,
    via: str,
    now: datetime,
    proof: Mapping[str, Any] | None = None,
) -> None:
    """Replace a person's earlier decision on a revision (an approver who now rejects)."""
    conn.execute(
        update(approvals)
        .where(approvals.c.revision_id == revision_id, approvals.c.person == person)
        .values(
            decision=decision,
            reason=reason,
            via=via,
            decided_at=now,
            proof=dict(proof) if proof is not None else None,
        )
    )


def decisions_for(conn: Connection, revision_id: int) -> list[Decision]:
    """Every decision on a revision, oldest first."""
    rows = conn.execute(
        select(approvals).where(approvals.c.revision_id == revision_id).order_by(approvals.c.id)
    )
    return [
        Decision(
            person=row.person,
            decision=row.decision,
            reason=row.reason,
            via=row.via,
            content_hash=row.content_hash,
            decided_at=row.decided_at,
            proof=dict(row.proof) if row.proof is not None else None,
        )
        for row in rows
    ]
