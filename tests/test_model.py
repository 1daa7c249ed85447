"""The lifecycle state machine and content hashes."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from broadcaster.errors import StateError
from broadcaster.model import (
    TRANSITIONS,
    AnnouncementState,
    Content,
    RevisionKind,
    Severity,
    check_transition,
)

S = AnnouncementState
ALLOWED = {
    (S.DRAFT, S.DRAFT),
    (S.DRAFT, S.PENDING_APPROVAL),
    (S.DRAFT, S.CANCELLED),
    (S.PENDING_APPROVAL, S.DRAFT),
    (S.PENDING_APPROVAL, S.APPROVED),
    (S.PENDING_APPROVAL, S.REJECTED),
    (S.PENDING_APPROVAL, S.CANCELLED),
    (S.APPROVED, S.DRAFT),
    (S.APPROVED, S.DISPATCHING),
    (S.APPROVED, S.CANCELLED),
    (S.REJECTED, S.DRAFT),
    (S.REJECTED, S.CANCELLED),
    (S.DISPATCHING, S.SENT),
    (S.DISPATCHING, S.PARTIALLY_FAILED),
    (S.SENT, S.DRAFT),
    (S.PARTIALLY_FAILED, S.DRAFT),
    (S.PARTIALLY_FAILED, S.DISPATCHING),
}


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(S, S)))
def test_every_transition_is_allowed_or_refused_as_designed(
    current: AnnouncementState, wanted: AnnouncementState
) -> None:
    if (current, wanted) in ALLOWED:
        check_transition(current, wanted)
    else:
        with pytest.raises(StateError, match=f"that is {current}"):
            check_transition(current, wanted)


def test_the_table_and_the_test_agree() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


def test_refusal_says_what_is_possible_instead() -> None:
    with pytest.raises(StateError, match="cannot send an announcement that is draft; from draft"):
        check_transition(S.DRAFT, S.DISPATCHING)
    with pytest.raises(StateError) as caught:
        check_transition(S.CANCELLED, S.DRAFT)
    assert "from cancelled" not in str(caught.value)  # nothing is possible from cancelled


def test_refusal_offers_only_what_a_person_can_do() -> None:
    with pytest.raises(StateError) as caught:
        check_transition(S.PARTIALLY_FAILED, S.PENDING_APPROVAL)
    assert str(caught.value).endswith("from partially_failed you can edit, send")
    with pytest.raises(StateError) as caught:
        check_transition(S.DISPATCHING, S.DRAFT)
    assert "mark as" not in str(caught.value)  # only the worker marks it sent


def test_sending_what_is_on_its_way_or_gone_says_so() -> None:
    with pytest.raises(StateError, match=r"already being sent .*send_on_approval"):
        check_transition(S.DISPATCHING, S.DISPATCHING)
    with pytest.raises(StateError, match="sent already; to change what went out, edit it"):
        check_transition(S.SENT, S.DISPATCHING)


BASE = Content(title="Titel", body="Text", targets=("web-b", "web-a"))


def test_hash_ignores_target_order_but_nothing_else() -> None:
    assert (
        BASE.content_hash() == dataclasses.replace(BASE, targets=("web-a", "web-b")).content_hash()
    )
    variants = [
        dataclasses.replace(BASE, title="Titel "),
        dataclasses.replace(BASE, body="Text."),
        dataclasses.replace(BASE, severity=Severity.CRISIS),
        dataclasses.replace(BASE, language="en"),
        dataclasses.replace(BASE, link="https://example.se"),
        dataclasses.replace(BASE, overrides={"sms": "Kort"}),
        dataclasses.replace(BASE, targets=("web-a",)),
        dataclasses.replace(BASE, kind=RevisionKind.CORRECTION),
    ]
    hashes = {BASE.content_hash(), *(v.content_hash() for v in variants)}
    assert len(hashes) == len(variants) + 1


def test_hash_is_sha256_of_a_stable_form() -> None:
    assert len(BASE.content_hash()) == 64
    assert BASE.canonical() == dataclasses.replace(BASE).canonical()
    assert b'"targets":["web-a","web-b"]' in BASE.canonical()
