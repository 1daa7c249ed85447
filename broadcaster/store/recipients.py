"""Recipient lists and opt-outs: the only module that writes them (personal data, stored once).

Every function works in the caller's transaction, so an import (list row and every member) either
commits whole or leaves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Select, delete, exists, func, insert, select

from broadcaster.store.schema import list_members, opt_outs, recipient_lists
from broadcaster.store.sql import chunked, insert_or_ignore

__all__ = [
    "ListSummary",
    "Member",
    "add_opt_outs",
    "delete_list",
    "find_list",
    "is_opted_out",
    "list_summaries",
    "member_counts",
    "member_numbers",
    "member_tags",
    "members",
    "on_opt_out_list",
    "opted_out",
    "remove_opt_out",
    "store_list",
]


@dataclass(frozen=True, kw_only=True)
class Member:
    """One recipient: an E.164 number, perhaps a name, and tags."""

    number: str
    name: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ListSummary:
    """A list without its numbers: what ``lists show`` may print."""

    id: int
    name: str
    organisation: str | None
    members: int
    opted_out: int
    updated_at: datetime


def find_list(conn: Connection, name: str) -> int | None:
    """The id of the list called ``name``, or None."""
    return conn.execute(
        select(recipient_lists.c.id).where(recipient_lists.c.name == name)
    ).scalar_one_or_none()


def store_list(
    conn: Connection,
    *,
    name: str,
    organisation: str | None,
    entries: Sequence[Member],
    now: datetime,
) -> int:
    """Create the list ``name`` with ``entries``, or replace the members of an existing one."""
    list_id = find_list(conn, name)
    if list_id is None:
        list_id = conn.execute(
            insert(recipient_lists)
            .values(name=name, organisation=organisation, created_at=now, updated_at=now)
            .returning(recipient_lists.c.id)
        ).scalar_one()
    else:
        conn.execute(delete(list_members).where(list_members.c.list_id == list_id))
        conn.execute(
            recipient_lists.update()
            .where(recipient_lists.c.id == list_id)
            .values(organisation=organisation, updated_at=now)
        )
    rows = [
        {"list_id": list_id, "number": e.number, "name": e.name, "tags": list(e.tags)}
        for e in entries
    ]
    for chunk in chunked(rows, 500):
        conn.execute(insert(list_members), list(chunk))
    return int(list_id)


def delete_list(conn: Connection, name: str) -> int | None:
    """Delete the list and its members; how many members it had, or None if there was none."""
    list_id = find_list(conn, name)
    if list_id is None:
        return None
    removed = conn.execute(delete(list_members).where(list_members.c.list_id == list_id))
    conn.execute(delete(recipient_lists).where(recipient_lists.c.id == list_id))
    return int(removed.rowcount or 0)


def on_opt_out_list(number: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether ``number`` (a column of another table) is on the opt-out list: an EXISTS for
    the statements of other store modules that must honour it. They read the list; only this
    module writes it."""
    return exists().where(opt_outs.c.number == number)


def members(conn: Connection, list_id: int) -> list[str]:
    """Every number of the list, opted-out ones included, in import order (stable).

    The opt-out list is applied by whoever sends: a dispatch creates an opted-out member's
    delivery cancelled, so the status can count them.
    """
    return list(conn.execute(member_numbers(list_id)).scalars())


def member_numbers(list_id: int) -> Select[str]:
    """The numbers of one list in import order, as a SELECT for another module's INSERT ...
    SELECT: the dispatch creates a list's deliveries in the database, so the numbers never
    travel to Python (250,000 of them would cost a process hundreds of MB)."""
    return (
        select(list_members.c.number)
        .where(list_members.c.list_id == list_id)
        .order_by(list_members.c.id)
    )


def member_counts(conn: Connection, list_id: int) -> tuple[int, int]:
    """How many members the list has, and how many of them are on the opt-out list."""
    opted = on_opt_out_list(list_members.c.number)
    row = conn.execute(
        select(func.count(), func.count().filter(opted)).where(list_members.c.list_id == list_id)
    ).one()
    return int(row[0]), int(row[1])


def list_summaries(conn: Connection, name: str | None = None) -> list[ListSummary]:
    """Every list (or the one called ``name``) with its member and opted-out counts."""
    opted = on_opt_out_list(list_members.c.number)
    query = (
        select(
            recipient_lists,
            func.count(list_members.c.id).label("member_count"),
            func.count(list_members.c.id).filter(opted).label("opted_count"),
        )
        .select_from(recipient_lists.outerjoin(list_members))
        .group_by(recipient_lists.c.id)
        .order_by(recipient_lists.c.name)
    )
    if name is not None:
        query = query.where(recipient_lists.c.name == name)
    return [
        ListSummary(
            id=row.id,
            name=row.name,
            organisation=row.organisation,
            members=row.member_count,
            opted_out=row.opted_count,
            updated_at=row.updated_at,
        )
        for row in conn.execute(query)
    ]


def member_tags(conn: Connection, list_id: int) -> dict[str, int]:
    """Members per tag of one list (opted-out members included; they are counted apart)."""
    counts: dict[str, int] = {}
    for tags in conn.execute(select(list_members.c.tags).where(list_members.c.list_id == list_id)):
        for tag in tags[0]:
            counts[tag] = counts.get(tag, 0) + 1
    return dict(sorted(counts.items()))


def add_opt_outs(conn: Connection, numbers: Sequence[str], now: datetime) -> int:
    """Opt these E.164 numbers out; how many were new."""
    return sum(
        insert_or_ignore(conn, opt_outs, {"number": number, "created_at": now})
        for number in numbers
    )


def remove_opt_out(conn: Connection, number: str) -> bool:
    """Opt the number back in; False when it was not opted out."""
    result = conn.execute(delete(opt_outs).where(opt_outs.c.number == number))
    return bool(result.rowcount)


def is_opted_out(conn: Connection, number: str) -> bool:
    """Whether the number is on the opt-out list."""
    found = conn.execute(select(opt_outs.c.number).where(opt_outs.c.number == number)).first()
    return found is not None


def opted_out(conn: Connection, numbers: Sequence[str]) -> set[str]:
    """Which of ``numbers`` are opted out."""
    found: set[str] = set()
    for chunk in chunked(numbers):
        query = select(opt_outs.c.number).where(opt_outs.c.number.in_(list(chunk)))
        found.update(conn.execute(query).scalars())
    return found
