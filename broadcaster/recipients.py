"""Recipient lists from CSV files, and the opt-out list (DESIGN §6; personal data).

The CSV format, as Excel and people write it:

* UTF-8, with or without a byte-order mark ("CSV UTF-8" in Excel).
* Comma or semicolon between fields (Swedish Excel writes semicolons); the first non-empty line
  decides: semicolons when it has at least as many semicolons as commas.
* Columns ``number``, then optional ``name`` and ``tags``. A header row is optional: when the
  first line's first field is not a phone number it is read as a header, and columns are found
  by name (number/nummer/telefon/phone/mobil, name/namn, tags/taggar).
* Several tags in the tags field are separated by ``|`` (or by commas, when the field is quoted
  or the file uses semicolons): ``hemtjänst|äldreomsorg``.

Numbers are normalised to E.164 (default region SE: ``070-123 45 67`` is ``+46701234567``).
Invalid rows are reported by line number and skipped; a number listed twice is one member, its
tags unioned. The whole file is read and checked before anything is written, and the list is
written in one transaction: a failed import keeps nothing. Importing into an existing list needs
``replace=True``, which swaps the members atomically — merging silently into a list of 10,000
people is the riskier mistake.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from broadcaster.app import App
from broadcaster.errors import InputError, NotFoundError, StateError
from broadcaster.privacy import DEFAULT_REGION, mask_phone
from broadcaster.store import recipients as store
from broadcaster.store.audit import record_event

__all__ = [
    "ParsedFile",
    "RecipientLists",
    "SkippedLine",
    "delete_list",
    "import_list",
    "import_opt_outs",
    "normalise_number",
    "opt_in",
    "opt_out",
    "parse_csv",
    "show_lists",
]

#: Largest file accepted: 26,000 members are about 1 MB; this leaves ample room.
MAX_FILE_BYTES = 50 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_NUMBER_HEADERS = {"number", "nummer", "telefon", "telefonnummer", "phone", "mobil", "mobile"}
_NAME_HEADERS = {"name", "namn"}
_TAG_HEADERS = {"tags", "tag", "taggar", "tagg"}
_TAG_SPLIT = re.compile(r"[|,]")


@dataclass(frozen=True)
class SkippedLine:
    """A row that was not imported: its line number, the number masked, and why."""

    line: int
    masked: str
    reason: str


@dataclass
class ParsedFile:
    """The members a file holds, in file order, and what was left out."""

    members: list[store.Member] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)
    merged: int = 0


def normalise_number(text: str) -> str:
    """``text`` as an E.164 number; InputError (masked) when it is not a valid one."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(text.strip(), DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InputError(f"{mask_phone(text.strip())} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InputError(f"{mask_phone(text.strip())} is not a valid phone number") from None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def check_list_name(name: str) -> str:
    """A list name: letters, digits, ``.``, ``_``, ``-``; at most 64 characters."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"{name[:40]!r} is not a list name: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def _read_text(path: Path) -> str:
    try:
        if not path.is_file():  # a folder, a device (/dev/zero never ends), a missing file
            what = "a folder" if path.is_dir() else "missing or not a regular file"
            raise InputError(f"{path} is {what}; give the path of a CSV file")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; check the path") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MB; split it")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(
            f"{path} is not UTF-8; in Excel save it as 'CSV UTF-8 (comma delimited)'"
        ) from None


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if first.count(";") and first.count(";") >= first.count(",") else ","


def _columns(header: Sequence[str]) -> tuple[int, int | None, int | None] | None:
    """Column positions (number, name, tags) from a header row; None if it is not a header."""
    names = [cell.strip().lower() for cell in header]

    def find(choices: set[str]) -> int | None:
        return next((i for i, cell in enumerate(names) if cell in choices), None)

    number = find(_NUMBER_HEADERS)
    if number is None:
        return None
    return number, find(_NAME_HEADERS), find(_TAG_HEADERS)


def _looks_like_number(cell: str) -> bool:
    return sum(ch.isdigit() for ch in cell) >= 5


def parse_csv(path: Path) -> ParsedFile:
    """Read a recipients file; InputError when it cannot be read or holds no valid row."""
    text = _read_text(path)
    reader = csv.reader(text.splitlines(), delimiter=_delimiter(text))
    parsed = ParsedFile()
    positions: tuple[int, int | None, int | None] = (0, 1, 2)
    by_number: dict[str, int] = {}
    first = True
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if first:
                first = False
                header = _columns(row)
                if header is not None:
                    positions = header
                    continue
                if not _looks_like_number(row[0]):
                    raise InputError(
                        f"{path}: line {line} is neither a header with a 'number' column nor a "
                        "row starting with a phone number"
                    )
            _add_row(parsed, by_number, row, line, positions)
    except csv.Error as exc:
        raise InputError(f"{path}: line {reader.line_num}: {exc}; fix the quoting") from None
    if not parsed.members:
        raise InputError(f"{path} has no valid phone number; nothing was imported")
    return parsed


def _cell(row: Sequence[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _add_row(
    parsed: ParsedFile,
    by_number: dict[str, int],
    row: Sequence[str],
    line: int,
    positions: tuple[int, int | None, int | None],
) -> None:
    raw = _cell(row, positions[0])
    if not raw:
        parsed.skipped.append(SkippedLine(line, "", "no number"))
        return
    try:
        number = normalise_number(raw)
    except InputError as exc:
        parsed.skipped.append(SkippedLine(line, mask_phone(raw), str(exc).split(" is ", 1)[1]))
        return
    name = _cell(row, positions[1]) or None
    tags = {tag.strip() for tag in _TAG_SPLIT.split(_cell(row, positions[2])) if tag.strip()}
    index = by_number.get(number)
    if index is None:
        by_number[number] = len(parsed.members)
        parsed.members.append(store.Member(number=number, name=name, tags=tuple(sorted(tags))))
        return
    parsed.merged += 1
    kept = parsed.members[index]
    parsed.members[index] = store.Member(
        number=number, name=kept.name or name, tags=tuple(sorted({*kept.tags, *tags}))
    )


def _skipped(parsed: ParsedFile) -> list[dict[str, Any]]:
    return [{"line": s.line, "number": s.masked, "reason": s.reason} for s in parsed.skipped]


def import_list(
    app: App,
    actor: str,
    name: str,
    path: Path,
    *,
    organisation: str | None = None,
    replace: bool = False,
) -> dict[str, Any]:
    """Import ``path`` as the list ``name`` in one transaction; the import's report."""
    check_list_name(name)
    if organisation is not None and organisation not in {
        org.id for org in app.config.organisations
    }:
        known = ", ".join(org.id for org in app.config.organisations)
        raise InputError(f"there is no organisation {organisation!r}; known: {known}")
    parsed = parse_csv(path)
    now = app.clock()
    with app.store.write() as conn:
        existed = store.find_list(conn, name) is not None
        if existed and not replace:
            raise StateError(
                f"the list {name!r} exists; import with --replace to replace its members "
                "(or `broadcaster lists delete` it first)"
            )
        numbers = [member.number for member in parsed.members]
        opted = store.opted_out(conn, numbers)
        store.store_list(
            conn, name=name, organisation=organisation, entries=parsed.members, now=now
        )
        record_event(
            conn,
            actor=actor,
            action="list_imported",
            now=now,
            list=name,
            members=len(parsed.members),
            skipped=len(parsed.skipped),
            replaced=existed,
        )
    return {
        "list": name,
        "organisation": organisation,
        "replaced": existed,
        "imported": len(parsed.members),
        "merged_duplicates": parsed.merged,
        "opted_out": len(opted),
        "skipped": _skipped(parsed),
    }


def delete_list(app: App, actor: str, name: str) -> dict[str, Any]:
    """Delete a list and its members."""
    check_list_name(name)
    now = app.clock()
    with app.store.write() as conn:
        removed = store.delete_list(conn, name)
        if removed is None:
            raise NotFoundError(f"there is no list {name!r} (see `broadcaster lists show`)")
        record_event(conn, actor=actor, action="list_deleted", now=now, list=name)
    return {"list": name, "deleted": True, "members": removed}


def show_lists(app: App, name: str | None = None) -> dict[str, Any]:
    """Counts per list and per tag; never a number."""
    if name is not None:
        check_list_name(name)
    with app.store.read() as conn:
        summaries = store.list_summaries(conn, name)
        if name is not None and not summaries:
            raise NotFoundError(f"there is no list {name!r} (see `broadcaster lists show`)")
        lists = [
            {
                "name": s.name,
                "organisation": s.organisation,
                "members": s.members,
                "opted_out": s.opted_out,
                "recipients": s.members - s.opted_out,
                "tags": store.member_tags(conn, s.id),
                "updated_at": s.updated_at.isoformat(),
            }
            for s in summaries
        ]
    return {"lists": lists}


def opt_out(app: App, actor: str, number: str) -> dict[str, Any]:
    """Put one number on the opt-out list."""
    e164 = normalise_number(number)
    now = app.clock()
    with app.store.write() as conn:
        added = store.add_opt_outs(conn, [e164], now)
        record_event(conn, actor=actor, action="opted_out", now=now, number=mask_phone(e164))
    return {"number": mask_phone(e164), "opted_out": True, "already": not added}


def opt_in(app: App, actor: str, number: str) -> dict[str, Any]:
    """Take one number off the opt-out list."""
    e164 = normalise_number(number)
    now = app.clock()
    with app.store.write() as conn:
        if not store.remove_opt_out(conn, e164):
            raise NotFoundError(f"{mask_phone(e164)} is not on the opt-out list")
        record_event(conn, actor=actor, action="opted_in", now=now, number=mask_phone(e164))
    return {"number": mask_phone(e164), "opted_out": False}


def import_opt_outs(app: App, actor: str, path: Path) -> dict[str, Any]:
    """Opt out every number in a CSV file (same format as a list; names and tags ignored)."""
    parsed = parse_csv(path)
    now = app.clock()
    with app.store.write() as conn:
        added = store.add_opt_outs(conn, [m.number for m in parsed.members], now)
        record_event(conn, actor=actor, action="opt_outs_imported", now=now, added=added)
    return {
        "numbers": len(parsed.members),
        "added": added,
        "already": len(parsed.members) - added,
        "merged_duplicates": parsed.merged,
        "skipped": _skipped(parsed),
    }


class RecipientLists:
    """The :class:`~broadcaster.channels.base.RecipientDirectory` on the store.

    Reads in the caller's transaction (the dispatch's), so the deliveries it creates match the
    list and the opt-outs as they were at that moment.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def members(self, list_name: str) -> Sequence[str]:
        """Every E.164 number of the list in import order, opted-out ones included.

        The dispatch splits those off (their deliveries are created cancelled, with no job),
        and the worker checks the opt-out list again just before each send.
        """
        return store.members(self.conn, self.list_id(list_name))

    def list_id(self, list_name: str) -> int:
        """The id of the list called ``list_name``; NotFoundError when there is none."""
        list_id = store.find_list(self.conn, list_name)
        if list_id is None:
            raise NotFoundError(
                f"there is no recipient list {list_name!r}; import it with "
                "`broadcaster lists import`"
            )
        return list_id
