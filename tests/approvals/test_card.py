"""The approval card's JSON: valid Adaptive Card 1.5 in every state, hostile text shown as text."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from broadcaster.approval_card import (
    CardDecision,
    CardView,
    ChannelLine,
    build_card,
    plain,
)
from broadcaster.approval_card_view import ChannelLines, card_view
from broadcaster.channels.teams_card import card_problems
from broadcaster.model import AnnouncementState, Severity
from broadcaster.recipients import import_list
from broadcaster.sandbox.teams import find_execute_action
from tests.approvals.conftest import AUTHOR, open_workspace, submitted, write_config
from tests.factories import FICTIONAL_NUMBERS, HOSTILE_BODY, HOSTILE_TITLE, add_sms_target

AT = datetime(2026, 12, 12, 13, 2, tzinfo=UTC)
HASH = "ab" * 32
_S = AnnouncementState


def view(**changes: Any) -> CardView:
    fields: dict[str, Any] = {
        "announcement_id": 7,
        "revision": 2,
        "content_hash": HASH,
        "title": "Vattnet är tillbaka",
        "body": "Dricksvattnet fungerar igen.",
        "severity": "crisis",
        "targets": ("web-borgholm", "sms-borgholm"),
        "author": AUTHOR,
        "state": _S.PENDING_APPROVAL,
        "current_revision": 2,
        "required": 2,
        "channels": (
            ChannelLine(target="web-borgholm", channel="website", summary="812 characters"),
            ChannelLine(target="sms-borgholm", channel="sms", summary="SMS GSM-7 ..."),
        ),
    }
    fields.update(changes)
    return CardView(**fields)


ANNA = CardDecision(person="anna.hasselbom", decided_at=AT, via="teams")
JENS = CardDecision(person="jens.odevall", decided_at=AT, via="cli")
REJECTION = CardDecision(person="jens.odevall", decided_at=AT, via="teams", reason="Fel nummer")

VARIANTS = {
    "waiting": view(),
    "one of two": view(approvals=(ANNA,)),
    "approved, not sent": view(state=_S.APPROVED, approvals=(ANNA, JENS)),
    "approved, sending": view(state=_S.DISPATCHING, approvals=(ANNA, JENS)),
    "sent": view(state=_S.SENT, approvals=(ANNA, JENS)),
    "rejected": view(state=_S.REJECTED, rejection=REJECTION),
    "edited": view(state=_S.DRAFT, current_revision=3),
    "cancelled": view(state=_S.CANCELLED),
    "refused": view(refusal="anna.hasselbom wrote announcement 7 and cannot approve it"),
    "exercise": view(exercise=True),
    "refresh users": view(refresh_users=("29:1abc", "29:1def")),
    "no channels": view(channels=()),
}


def validator(specs_dir: Path) -> Draft6Validator:
    """The official Adaptive Card 1.5 schema, as published."""
    schema = json.loads((specs_dir / "adaptivecards" / "adaptive-card-1.5.0.json").read_text())
    return Draft6Validator(schema)


def assert_valid(card: dict[str, Any], specs_dir: Path) -> None:
    assert card["version"] == "1.5" and card["type"] == "AdaptiveCard"
    bare = {key: value for key, value in card.items() if key != "msteams"}
    errors = list(validator(specs_dir).iter_errors(bare))
    assert errors == [], errors[0].message if errors else ""
    assert card_problems(card) == []  # what the Teams adapter and preview check too


def texts(node: Any) -> list[str]:
    """Every text Teams shows: TextBlocks, TextRuns, facts."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") in ("TextBlock", "TextRun"):
            found.append(node["text"])
        if "title" in node and "value" in node:
            found += [node["title"], node["value"]]
        for value in node.values():
            found += texts(value)
    elif isinstance(node, list):
        for item in node:
            found += texts(item)
    return found


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_is_a_valid_adaptive_card_1_5(name: str, full_specs: Path) -> None:
    assert_valid(build_card(VARIANTS[name]), full_specs)


def test_a_waiting_card_carries_the_revision_in_approve_and_reject() -> None:
    card = build_card(view(approvals=(ANNA,)))
    data = {"broadcaster": "approval", "announcement": 7, "revision": 2, "hash": HASH}
    approve = find_execute_action(card, "approve")
    reject = find_execute_action(card, "reject")
    assert approve is not None and reject is not None
    assert approve["data"] == data and reject["data"] == data
    for action in (approve, reject):
        assert action["fallback"]["type"] == "Action.Submit"
        assert action["fallback"]["data"] == {**data, "verb": action["verb"]}
    [show] = [a for a in card["actions"] if a["type"] == "Action.ShowCard"]
    [reason] = show["card"]["body"]
    assert (reason["type"], reason["id"], reason["isRequired"]) == ("Input.Text", "reason", True)
    assert approve["associatedInputs"] == "none"  # an empty reason never blocks an approval
    assert card["refresh"]["action"] == {"type": "Action.Execute", "verb": "refresh", "data": data}
    assert "userIds" not in card["refresh"]  # no MRIs known: every viewer refreshes
    shown = "\n".join(texts(card))
    assert "Waiting: 1 of 2 approvals: anna.hasselbom 12 Dec 14:02 (teams)" in shown
    assert "2, hash abababababab" in shown


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("approved, sending", "Approved (2 of 2): anna.hasselbom 12 Dec 14:02 (teams); "
         "jens.odevall 12 Dec 14:02 (cli). Being sent."),
        ("sent", "Approved (2 of 2)"),
        ("approved, not sent", "Not sent yet."),
        ("rejected", "Rejected by jens.odevall 12 Dec 14:02: Fel nummer"),
        ("edited", "Edited: revision 3 replaces this one"),
        ("cancelled", "No longer waiting for approval: cancelled"),
    ],
)  # fmt: skip
def test_a_decided_card_says_who_and_when_and_has_no_buttons(name: str, expected: str) -> None:
    card = build_card(VARIANTS[name])
    assert "actions" not in card
    assert find_execute_action(card.get("actions"), "approve") is None
    assert expected in "\n".join(texts(card))
    assert card["refresh"]["action"]["verb"] == "refresh"  # viewers still see where it stands


def test_a_refusal_is_a_red_notice_on_top_of_the_card() -> None:
    card = build_card(VARIANTS["refused"])
    notice = card["body"][0]
    assert notice["type"] == "Container" and notice["style"] == "attention"
    [run] = notice["items"][0]["inlines"]
    assert run["color"] == "Attention"
    assert run["text"] == "Not done: anna.hasselbom wrote announcement 7 and cannot approve it"
    assert find_execute_action(card, "approve") is not None  # others may still decide


def test_hostile_title_and_body_are_shown_as_plain_text(full_specs: Path) -> None:
    card = build_card(view(title=HOSTILE_TITLE, body=HOSTILE_BODY, author="<b>x</b> **y**"))
    assert_valid(card, full_specs)
    blocks = [e for e in card["body"] if e["type"] == "TextBlock"]
    # Markdown is read in TextBlocks only: none of them holds what people typed.
    for block in blocks:
        assert "<script>" not in block["text"] and "**" not in block["text"]
    runs = [e["inlines"][0]["text"] for e in card["body"] if e["type"] == "RichTextBlock"]
    assert plain(HOSTILE_TITLE) in runs and plain(HOSTILE_BODY) in runs
    # `{{` would be read as a date function: it is broken by a zero-width space.
    assert "{{" not in json.dumps(card, ensure_ascii=False)
    assert plain("{{ 7*7 }}") == "{\u200b{ 7*7 }\u200b}"


def test_the_card_of_a_stored_announcement_says_what_each_channel_gets(
    workspace_dir: Path, database_url: str, sandbox: Any, tmp_path: Path, full_specs: Path
) -> None:
    path = write_config(workspace_dir, database_url)
    add_sms_target(workspace_dir)
    with path.open("a", encoding="utf-8") as config:
        config.write("price_per_segment = 0.35\n")  # on the SMS target, appended last
    app = open_workspace(path, sandbox)
    try:
        csv = tmp_path / "boende.csv"
        csv.write_text("nummer\n" + "\n".join(FICTIONAL_NUMBERS[:40]) + "\n", "utf-8")
        import_list(app, "admin", "boende", csv, organisation="borgholm")
        announcement = submitted(app, severity=Severity.CRISIS, body="Å" * 100)
        with app.store.read() as conn:
            shown = card_view(app, conn, announcement.id, lines=ChannelLines(app))
    finally:
        app.close()
    lines = {line.target: line.summary for line in shown.channels}
    assert re.fullmatch(
        r"SMS GSM-7, \d+ characters: 2 segment\(s\) x 40 recipients = 80 segments, cost 28\.00",
        lines["sms-borgholm"],
    )
    assert lines["web-borgholm"].endswith(" characters")
    card = build_card(shown)
    assert_valid(card, full_specs)
    assert lines["sms-borgholm"] in texts(card)
