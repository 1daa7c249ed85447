"""Drafting and editing: validation, revisions, audit."""

from __future__ import annotations

import pytest

from broadcaster.app import App
from broadcaster.authoring import DraftInput, EditInput, cancel, create_draft, edit, submit
from broadcaster.errors import InputError, NotFoundError, StateError
from broadcaster.model import AnnouncementState, Severity
from broadcaster.store.announcements import get_revision
from broadcaster.store.audit import list_events


def draft(app: App, **changes: object) -> int:
    values: dict[str, object] = {"title": "Rubrik", "body": "Text"}
    values.update(changes)
    return create_draft(app, "kommunikator", DraftInput(**values)).id  # type: ignore[arg-type]


def test_draft_resolves_groups_and_records_who_wrote_it(db_app: App) -> None:
    created = create_draft(
        db_app,
        "kommunikator",
        DraftInput(title="  Rubrik  ", body="Text\n", severity=Severity.CRISIS, to=("borgholm",)),
    )
    revision = created.revision
    assert (created.state, created.author, revision.number) == ("draft", "kommunikator", 1)
    assert revision.content.targets == ("web-borgholm",)
    assert (revision.content.title, revision.content.body) == ("Rubrik", "Text")
    assert revision.content.language == "sv"
    with db_app.store.read() as conn:
        (event,) = list_events(conn, created.id)
    assert (event.action, event.actor, event.details["content_hash"]) == (
        "drafted",
        "kommunikator",
        revision.content_hash,
    )


def test_default_targets_are_all(db_app: App) -> None:
    created = create_draft(db_app, "k", DraftInput(title="R", body="T"))
    assert created.revision.content.targets == ("web-borgholm", "web-morbylanga")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"title": ""}, "the title is empty"),
        ({"title": "två\nrader"}, "the title must be one line"),
        ({"title": "x" * 201}, "at most 200 characters"),
        ({"body": "   "}, "the body is empty"),
        ({"link": "javascript:alert(1)"}, r"is not an http\(s\) address"),
        ({"link": "www.borgholm.se"}, r"is not an http\(s\) address"),
        ({"overrides": {"fax": "x"}}, "--override fax: unknown channel"),
        ({"to": ("web-kalmar",)}, "--to web-kalmar: no target or group of that name"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    db_app: App, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        draft(db_app, **changes)
    with db_app.store.read() as conn:
        assert list_events(conn) == []


def test_edit_makes_a_new_revision_and_keeps_the_old(db_app: App) -> None:
    announcement_id = draft(db_app)
    edited = edit(db_app, "kommunikator", announcement_id, EditInput(title="Ny rubrik", link=""))
    assert edited.revision.number == 2
    assert edited.revision.content.title == "Ny rubrik"
    with db_app.store.read() as conn:
        assert get_revision(conn, announcement_id, 1).content.title == "Rubrik"


def test_edit_without_change_is_refused(db_app: App) -> None:
    announcement_id = draft(db_app)
    with pytest.raises(InputError, match="nothing to change"):
        edit(db_app, "kommunikator", announcement_id, EditInput(title="Rubrik"))


def test_unknown_announcement_is_not_found(db_app: App) -> None:
    with pytest.raises(NotFoundError, match="there is no announcement 42"):
        submit(db_app, "kommunikator", 42)


def test_cancel_and_then_nothing_more(db_app: App) -> None:
    announcement_id = draft(db_app)
    assert cancel(db_app, "kommunikator", announcement_id).state == AnnouncementState.CANCELLED
    with pytest.raises(StateError):
        submit(db_app, "kommunikator", announcement_id)
    with pytest.raises(StateError):
        edit(db_app, "kommunikator", announcement_id, EditInput(title="X"))
