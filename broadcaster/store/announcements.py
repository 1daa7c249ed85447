"""Announcements and their revisions in the database."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from broadcaster.errors import NotFoundError, StateError
from broadcaster.model import (
    Announcement,
    AnnouncementState,
    Content,
    Revision,
    RevisionKind,
    Severity,
)
from broadcaster.store.schema import announcements, revisions
from broadcaster.store.sql import inserted_id

__all__ = [
    "create_announcement",
    "get_announcement",
    "get_revision",
    "get_revision_by_id",
    "list_announcements",
    "lock_state",
    "revision_authors",
    "revision_hashes",
    "revision_number",
    "revision_numbers",
    "revisions_with_uids",
    "set_state",
    "writer_counts",
]


def create_announcement(conn: Connection, content: Content, author: str, now: datetime) -> int:
    """Insert a new draft announcement with its first revision; returns its id."""
    announcement_id = inserted_id(
        conn.execute(
            announcements.insert().values(
                uid=str(uuid.uuid4()),
                state=AnnouncementState.DRAFT,
                current_revision=1,
                author=author,
                created_at=now,
                updated_at=now,
            )
        )
    )
    add_revision(conn, announcement_id, 1, content, author, now)
    return announcement_id


def add_revision(
    conn: Connection,
    announcement_id: int,
    number: int,
    content: Content,
    author: str,
    now: datetime,
) -> None:
    """Insert revision ``number`` of an announcement."""
    conn.execute(
        revisions.insert().values(
            announcement_id=announcement_id,
            number=number,
            kind=content.kind,
            title=content.title,
            body=content.body,
            severity=content.severity,
            language=content.language,
            link=content.link,
            overrides=dict(content.overrides),
            targets=list(content.targets),
            content_hash=content.content_hash(),
            author=author,
            created_at=now,
        )
    )


def get_announcement(conn: Connection, announcement_id: int, *, lock: bool = False) -> Announcement:
    """The announcement with its current revision; ``lock`` takes a row lock on PostgreSQL."""
    query = select(announcements).where(announcements.c.id == announcement_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"there is no announcement {announcement_id} (see `broadcaster list`)")
    return _announcement(row, get_revision(conn, announcement_id, row.current_revision))


def lock_state(conn: Connection, announcement_id: int) -> AnnouncementState:
    """The announcement's state, with its row locked until the transaction ends (PostgreSQL).

    On SQLite the write transaction itself is the lock (``BEGIN IMMEDIATE``).
    """
    query = select(announcements.c.state).where(announcements.c.id == announcement_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    state = conn.execute(query).scalar_one_or_none()
    if state is None:
        raise NotFoundError(f"there is no announcement {announcement_id}")
    return AnnouncementState(state)


def revision_number(conn: Connection, revision_id: int) -> int:
    """The number of a revision, from its row id."""
    return int(
        conn.execute(select(revisions.c.number).where(revisions.c.id == revision_id)).scalar_one()
    )


def get_revision(conn: Connection, announcement_id: int, number: int) -> Revision:
    """One revision of an announcement."""
    row = conn.execute(
        select(revisions).where(
            revisions.c.announcement_id == announcement_id, revisions.c.number == number
        )
    ).first()
    if row is None:
        raise NotFoundError(f"announcement {announcement_id} has no revision {number}")
    return _revision(row)


def get_revision_by_id(conn: Connection, revision_id: int) -> Revision:
    """One revision by its row id."""
    row = conn.execute(select(revisions).where(revisions.c.id == revision_id)).first()
    if row is None:
        raise NotFoundError(f"there is no revision with id {revision_id}")
    return _revision(row)


def revisions_with_uids(
    conn: Connection, revision_ids: Collection[int]
) -> dict[int, tuple[Revision, str]]:
    """Revisions by row id, each with its announcement's uid (for the worker's batched reads)."""
    query = (
        select(revisions, announcements.c.uid)
        .join(announcements, announcements.c.id == revisions.c.announcement_id)
        .where(revisions.c.id.in_(list(revision_ids)))
    )
    found = {}
    for row in conn.execute(query):
        values = dict(row._mapping)
        uid = values.pop("uid")
        found[row.id] = (_revision_from(values), uid)
    return found


def revision_numbers(conn: Connection, announcement_id: int) -> dict[int, int]:
    """Revision row id -> revision number, for one announcement."""
    rows = conn.execute(
        select(revisions.c.id, revisions.c.number).where(
            revisions.c.announcement_id == announcement_id
        )
    )
    return {row.id: row.number for row in rows}


def revision_hashes(conn: Connection, announcement_id: int) -> dict[int, str]:
    """Revision number -> content hash, for every revision of one announcement."""
    rows = conn.execute(
        select(revisions.c.number, revisions.c.content_hash).where(
            revisions.c.announcement_id == announcement_id
        )
    )
    return {row.number: row.content_hash for row in rows}


def revision_authors(conn: Connection, announcement_id: int) -> list[str]:
    """Everyone who wrote a revision of one announcement, first writer first, each once."""
    rows = conn.execute(
        select(revisions.c.author)
        .where(revisions.c.announcement_id == announcement_id)
        .order_by(revisions.c.number)
    )
    return list(dict.fromkeys(row.author for row in rows))


def writer_counts(conn: Connection) -> dict[str, int]:
    """Everyone who wrote or edited any announcement, with how many revisions they wrote."""
    query = select(revisions.c.author, func.count()).group_by(revisions.c.author)
    return {author: int(count) for author, count in conn.execute(query)}


def list_announcements(
    conn: Connection, state: AnnouncementState | None = None
) -> list[Announcement]:
    """All announcements (optionally in one state), newest first, with current revisions."""
    query = (
        select(announcements, revisions)
        .join(
            revisions,
            (revisions.c.announcement_id == announcements.c.id)
            & (revisions.c.number == announcements.c.current_revision),
        )
        .order_by(announcements.c.id.desc())
    )
    if state is not None:
        query = query.where(announcements.c.state == state)
    result = []
    for row in conn.execute(query):
        mapping = row._mapping
        revision = _revision_from({c.name: mapping[c] for c in revisions.c})
        result.append(_announcement_from({c.name: mapping[c] for c in announcements.c}, revision))
    return result


def set_state(
    conn: Connection,
    announcement_id: int,
    expected: AnnouncementState,
    new: AnnouncementState,
    now: datetime,
    *,
    current_revision: int | None = None,
) -> None:
    """Compare-and-set the state: fails if someone else changed it since it was read."""
    values: dict[str, Any] = {"state": new, "updated_at": now}
    if current_revision is not None:
        values["current_revision"] = current_revision
    changed = conn.execute(
        update(announcements)
        .where(announcements.c.id == announcement_id, announcements.c.state == expected)
        .values(**values)
    ).rowcount
    if changed != 1:
        raise StateError(
            f"announcement {announcement_id} changed while this command ran "
            f"(it is no longer {expected}); look at `broadcaster status {announcement_id}`"
        )


def _revision(row: Row[Any]) -> Revision:
    return _revision_from(dict(row._mapping))


def _revision_from(values: dict[str, Any]) -> Revision:
    content = Content(
        title=values["title"],
        body=values["body"],
        severity=Severity(values["severity"]),
        language=values["language"],
        link=values["link"],
        overrides=dict(values["overrides"]),
        targets=tuple(values["targets"]),
        kind=RevisionKind(values["kind"]),
    )
    return Revision(
        id=values["id"],
        announcement_id=values["announcement_id"],
        number=values["number"],
        content=content,
        content_hash=values["content_hash"],
        author=values["author"],
        created_at=values["created_at"],
    )


def _announcement(row: Row[Any], revision: Revision) -> Announcement:
    return _announcement_from(dict(row._mapping), revision)


def _announcement_from(values: dict[str, Any], revision: Revision) -> Announcement:
    return Announcement(
        id=values["id"],
        uid=values["uid"],
        state=AnnouncementState(values["state"]),
        author=values["author"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        revision=revision,
    )
