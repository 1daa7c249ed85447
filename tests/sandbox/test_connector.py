"""The Bot Connector emulator, with tokens from msal and requests from httpx (as our adapter)."""

from __future__ import annotations

import time

import pytest

from broadcaster.sandbox import TEAMS_CHANNEL_IDS
from broadcaster.sandbox.keys import SigningKey

from .conftest import CARD, card_activity, start_thread

APPROVERS, BORGHOLM_STAFF = TEAMS_CHANNEL_IDS


def test_thread_post_reply_update_delete(sandbox, connector) -> None:
    created = start_thread(connector, card_activity())
    root = created["activityId"]
    assert created["id"] == f"{APPROVERS};messageid={root}"

    reply = connector(
        "POST",
        f"v3/conversations/{created['id']}/activities",
        json={"type": "message", "text": "Skickat för godkännande."},
    )
    assert reply.status_code == 201
    reply_id = reply.json()["id"]
    assert reply_id != root

    updated_card = {**CARD, "actions": []}
    update = connector(
        "PUT",
        f"v3/conversations/{created['id']}/activities/{root}",
        json=card_activity(updated_card),
    )
    assert update.status_code == 200
    assert update.json() == {"id": root}
    assert sandbox.connector.activity(root).card()["actions"] == []

    delete = connector("DELETE", f"v3/conversations/{created['id']}/activities/{reply_id}")
    assert delete.status_code == 200
    assert [a.id for a in sandbox.connector.activities(APPROVERS)] == [root]
    again = connector("DELETE", f"v3/conversations/{created['id']}/activities/{reply_id}")
    assert again.status_code == 404


def test_new_thread_by_posting_to_the_channel(sandbox, connector) -> None:
    posted = connector(
        "POST",
        f"v3/conversations/{BORGHOLM_STAFF}/activities",
        json={"type": "message", "text": "Läget kl 16"},
    )
    assert posted.status_code == 201
    [stored] = sandbox.connector.activities(BORGHOLM_STAFF)
    assert stored.conversation_id == f"{BORGHOLM_STAFF};messageid={stored.id}"
    [record] = sandbox.records.find("connector", method="POST")
    assert record.target == BORGHOLM_STAFF


def test_missing_and_forged_tokens_are_refused(sandbox, connector) -> None:
    path = f"v3/conversations/{APPROVERS}/activities"
    body = {"type": "message", "text": "x"}
    assert connector("POST", path, token=None, json=body).status_code == 401
    env = sandbox.env()
    now = int(time.time())
    claims = {
        "aud": "https://api.botframework.com",
        "iss": f"https://sts.windows.net/{env['TEAMS_TENANT_ID']}/",
        "appid": env["TEAMS_APP_ID"],
        "tid": env["TEAMS_TENANT_ID"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    forged = SigningKey("attacker").sign(claims)
    answer = connector("POST", path, token=forged, json=body)
    assert answer.status_code == 401
    assert answer.json() == {"message": "Authorization has been denied for this request."}
    expired = sandbox.login.access_token(lifetime_s=-600)
    assert connector("POST", path, token=expired, json=body).status_code == 401
    teams_token = sandbox.teams.token()  # right issuer format, wrong audience and key
    assert connector("POST", path, token=teams_token, json=body).status_code == 401
    assert sandbox.connector.activities() == []


def test_unknown_and_blocked_channels(sandbox, connector) -> None:
    unknown = connector(
        "POST",
        "v3/conversations/19:nope@thread.tacv2/activities",
        json={"type": "message", "text": "x"},
    )
    assert unknown.status_code == 403
    assert unknown.json()["error"]["code"] == "BotNotInConversationRoster"
    sandbox.connector.block(BORGHOLM_STAFF)
    blocked = connector(
        "POST",
        f"v3/conversations/{BORGHOLM_STAFF}/activities",
        json={"type": "message", "text": "x"},
    )
    assert blocked.json()["error"]["code"] == "MessageWritesBlocked"


@pytest.mark.parametrize(
    "card",
    [
        {**CARD, "body": [{"type": "TextBlock", "text": "x", "size": "Enormous"}]},
        {**CARD, "body": [{"type": "TextBlock"}]},
        {**CARD, "version": "1.6"},
        {k: v for k, v in CARD.items() if k != "version"},
        {**CARD, "colour": "red"},
    ],
)
def test_invalid_cards_are_bad_argument(sandbox, connector, full_specs, card) -> None:
    answer = connector("POST", f"v3/conversations/{APPROVERS}/activities", json=card_activity(card))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadArgument"
    assert "Adaptive Card" in answer.json()["error"]["message"]
    assert sandbox.connector.activities() == []


def test_activity_is_checked_against_the_swagger(connector, full_specs) -> None:
    answer = connector(
        "POST",
        f"v3/conversations/{APPROVERS}/activities",
        json={"type": "message", "text": "x", "attachments": "not a list"},
    )
    assert answer.status_code == 400
    assert "attachments" in answer.json()["error"]["message"]
    empty = connector("POST", f"v3/conversations/{APPROVERS}/activities", json={"type": "message"})
    assert empty.status_code == 400


def test_oversized_message_is_413(connector) -> None:
    answer = connector(
        "POST",
        f"v3/conversations/{APPROVERS}/activities",
        json={"type": "message", "text": "x" * 30_000},
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "MessageSizeTooBig"
