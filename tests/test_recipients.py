"""Recipient lists and opt-outs on both databases: the right set, one transaction, no leaks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import func, select

from broadcaster import recipients
from broadcaster.app import App
from broadcaster.channels.base import Channel, RecipientDirectory, Rendered
from broadcaster.channels.registry import ChannelRegistry
from broadcaster.config import TargetConfig
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import InputError, NotFoundError, StateError
from broadcaster.model import Receipt
from broadcaster.recipients import RecipientLists, import_list, parse_csv
from broadcaster.rendering.message import Message
from broadcaster.store.schema import deliveries, jobs, list_members, recipient_lists
from tests.queue.conftest import approved

# Numbers from the range PTS keeps for fiction (070-17 406 05 to 070-17 406 99).
GOOD = "+46701740605"
SECOND = "+46701740606"
OPTED = "+46701740607"
DANISH = "+4520123456"

MIXED = (
    "number,name,tags\n"
    "070-174 06 05,Anna,hemtjänst|skola\n"  # line 2: national, with spaces and a dash
    "+45 20 12 34 56,Lars,\n"  # line 3: foreign, kept as E.164
    "070-12,Kort,\n"  # line 4: too short
    "not a number,X,\n"  # line 5
    "\n"
    "0701740606,,\n"  # line 7
    "+46 70 174 06 05,,akut\n"  # line 8: Anna again: merged, tags unioned
    "0701740607,Optad,\n"  # line 9: opted out
)


def write(tmp_path: Path, text: str, name: str = "list.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def members_of(app: App, name: str) -> list[str]:
    with app.store.read() as conn:
        return list(RecipientLists(conn).members(name))


def row_counts(app: App) -> tuple[int, int]:
    with app.store.read() as conn:
        lists = conn.execute(select(func.count()).select_from(recipient_lists)).scalar_one()
        people = conn.execute(select(func.count()).select_from(list_members)).scalar_one()
    return lists, people


def test_a_mixed_file_imports_exactly_the_right_set(db_app: App, tmp_path: Path) -> None:
    recipients.opt_out(db_app, "kommunikator", "070-174 06 07")
    report = import_list(db_app, "kommunikator", "boende", write(tmp_path, MIXED))
    assert report["imported"] == 4
    assert report["merged_duplicates"] == 1
    assert report["opted_out"] == 1
    assert [line["line"] for line in report["skipped"]] == [4, 5]
    assert all("174" not in line["number"] for line in report["skipped"])
    # Import order; every member, the opted-out one too (the dispatch cancels its delivery).
    assert members_of(db_app, "boende") == [GOOD, DANISH, SECOND, OPTED]
    shown = recipients.show_lists(db_app, "boende")["lists"][0]
    assert shown["members"] == 4 and shown["opted_out"] == 1 and shown["recipients"] == 3
    assert shown["tags"] == {"akut": 1, "hemtjänst": 1, "skola": 1}


def test_an_opt_out_after_import_counts_and_opting_in_restores(db_app: App, tmp_path: Path) -> None:
    import_list(db_app, "kommunikator", "boende", write(tmp_path, MIXED))

    def recipients_and_opted() -> tuple[int, int]:
        shown = recipients.show_lists(db_app, "boende")["lists"][0]
        return shown["recipients"], shown["opted_out"]

    assert recipients_and_opted() == (4, 0)
    recipients.opt_out(db_app, "kommunikator", "+46701740605")
    assert recipients_and_opted() == (3, 1)
    assert members_of(db_app, "boende")[0] == GOOD  # still a member: the list is not edited
    recipients.opt_in(db_app, "kommunikator", "0701740605")
    assert recipients_and_opted() == (4, 0)


def test_semicolons_bom_and_no_header(db_app: App, tmp_path: Path) -> None:
    path = write(tmp_path, "070-174 06 05;Åsa Öberg;a,b\r\n0701740606;Ärla;b\r\n", bom=True)
    parsed = parse_csv(path)
    assert [(m.number, m.name, m.tags) for m in parsed.members] == [
        (GOOD, "Åsa Öberg", ("a", "b")),
        (SECOND, "Ärla", ("b",)),
    ]
    import_list(db_app, "kommunikator", "personal", path, organisation="borgholm")
    assert members_of(db_app, "personal") == [GOOD, SECOND]
    assert recipients.show_lists(db_app)["lists"][0]["organisation"] == "borgholm"


def test_a_header_finds_columns_by_name(tmp_path: Path) -> None:
    parsed = parse_csv(write(tmp_path, "Namn;Taggar;Telefon\nAnna;x|y;0701740605\n"))
    assert [(m.number, m.name, m.tags) for m in parsed.members] == [(GOOD, "Anna", ("x", "y"))]


def test_an_existing_list_is_refused_without_replace(db_app: App, tmp_path: Path) -> None:
    import_list(db_app, "kommunikator", "boende", write(tmp_path, MIXED))
    with pytest.raises(StateError, match="--replace"):
        import_list(db_app, "kommunikator", "boende", write(tmp_path, "0701740699\n", "b.csv"))
    assert members_of(db_app, "boende")[0] == GOOD


def test_replace_swaps_the_members(db_app: App, tmp_path: Path) -> None:
    import_list(db_app, "kommunikator", "boende", write(tmp_path, MIXED))
    report = import_list(
        db_app, "kommunikator", "boende", write(tmp_path, "0701740699\n", "b.csv"), replace=True
    )
    assert report["replaced"] is True
    assert members_of(db_app, "boende") == ["+46701740699"]
    assert row_counts(db_app) == (1, 1)


def test_a_failing_import_keeps_nothing(
    db_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    # The members are written; the failure comes after, inside the same transaction.
    monkeypatch.setattr(recipients, "record_event", broken)
    with pytest.raises(RuntimeError):
        import_list(db_app, "kommunikator", "boende", write(tmp_path, MIXED))
    assert row_counts(db_app) == (0, 0)


def test_a_failing_replace_keeps_the_old_list(
    db_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_list(db_app, "kommunikator", "boende", write(tmp_path, MIXED))
    before = members_of(db_app, "boende")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(recipients, "record_event", broken)
    with pytest.raises(RuntimeError):
        import_list(
            db_app, "kommunikator", "boende", write(tmp_path, "0701740699\n", "b"), replace=True
        )
    assert members_of(db_app, "boende") == before


def test_a_file_that_turns_bad_midway_keeps_nothing(db_app: App, tmp_path: Path) -> None:
    good = "".join(f"07017406{n:02d}\n" for n in range(5, 99)).encode()
    path = tmp_path / "halfway.csv"
    path.write_bytes(good + b"\xff\xfe broken\n" + good)
    with pytest.raises(InputError, match="not UTF-8"):
        import_list(db_app, "kommunikator", "boende", path)
    assert row_counts(db_app) == (0, 0)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no valid phone number"),
        ("nonsense,here\n", "neither a header"),
        ("number\n070-12\n", "no valid phone number"),
    ],
)
def test_files_without_valid_rows_are_refused(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        parse_csv(write(tmp_path, text))


def test_an_unknown_list_is_not_found(db_app: App) -> None:
    with db_app.store.read() as conn, pytest.raises(NotFoundError, match="lists import"):
        RecipientLists(conn).members("okänd")


def test_dispatch_creates_one_delivery_per_listed_number(db_app: App, tmp_path: Path) -> None:
    class Texts(Channel):
        name: ClassVar[str] = "website"

        @classmethod
        def recipients(cls, target: TargetConfig, directory: RecipientDirectory) -> Sequence[str]:
            return directory.members("boende")

        def render(self, message: Message) -> Rendered:
            return Rendered(text=message.content.title)

        async def send(self, message: Message, rendered: Rendered) -> Receipt:
            return Receipt(message.idempotency_key)

    registry = ChannelRegistry()
    registry.register_class("website", Texts)
    db_app.registry = registry
    recipients.opt_out(db_app, "kommunikator", OPTED)
    import_list(db_app, "kommunikator", "boende", write(tmp_path, MIXED))
    announcement_id = approved(db_app, to=("web-borgholm",))
    dispatch_revision(db_app, "kommunikator", announcement_id)
    with db_app.store.read() as conn:
        rows = conn.execute(
            select(deliveries.c.recipient, deliveries.c.state, deliveries.c.cancel_reason).order_by(
                deliveries.c.id
            )
        ).all()
        queued = conn.execute(select(jobs.c.delivery_id)).scalars().all()
    assert [tuple(row) for row in rows] == [
        (GOOD, "pending", None),
        (DANISH, "pending", None),
        (SECOND, "pending", None),
        (OPTED, "cancelled", "opted_out"),  # a row, so status counts it; no job
    ]
    assert len(queued) == 3
