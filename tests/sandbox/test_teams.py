"""Acting as Teams: a click on a posted card reaches the bot as a signed adaptiveCard/action."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest

from broadcaster.sandbox import APPROVER_OBJECT_IDS

from .conftest import CARD, Receiver, card_activity, start_thread

INVOKE_RESPONSE = {
    "statusCode": 200,
    "type": "application/vnd.microsoft.card.adaptive",
    "value": CARD,
}


def validate_like_a_bot(sandbox, authorization: str, activity: dict) -> dict:
    """Check as /api/messages will: metadata, JWKS, signature, issuer, audience, serviceurl."""
    env = sandbox.env()
    metadata = httpx.get(env["BROADCASTER_TEAMS_OPENID_URL"]).json()
    token = authorization.removeprefix("Bearer ")
    key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=env["TEAMS_APP_ID"],
        issuer=metadata["issuer"],
        leeway=300,
    )
    assert claims["serviceurl"] == activity["serviceUrl"]
    jwk = httpx.get(metadata["jwks_uri"]).json()["keys"][0]
    assert activity["channelId"] in jwk["endorsements"]
    return claims


def test_click_sends_a_signed_invoke_for_the_cards_button(
    sandbox, connector, receiver: Receiver
) -> None:
    receiver.body = json.dumps(INVOKE_RESPONSE).encode()
    root = start_thread(connector, card_activity())["activityId"]
    answer = sandbox.teams.click(
        f"{receiver.url}/api/messages",
        activity_id=root,
        verb="approve",
        user_object_id=APPROVER_OBJECT_IDS[1],
        user_name="Anna Hasselbom",
    )
    assert answer.status_code == 200
    assert answer.json() == INVOKE_RESPONSE

    [request] = receiver.requests
    assert request.path == "/api/messages"
    activity = request.json()
    assert activity["type"] == "invoke"
    assert activity["name"] == "adaptiveCard/action"
    assert activity["value"]["action"] == {
        "type": "Action.Execute",
        "verb": "approve",
        "data": {"announcement": 7, "hash": "abc123"},
    }
    assert activity["from"]["aadObjectId"] == APPROVER_OBJECT_IDS[1]
    assert activity["replyToId"] == root
    assert activity["conversation"]["id"].endswith(f";messageid={root}")
    assert activity["serviceUrl"] == sandbox.env()["BROADCASTER_TEAMS_SERVICE_URL"]
    assert activity["conversation"]["tenantId"] == sandbox.env()["TEAMS_TENANT_ID"]
    validate_like_a_bot(sandbox, request.headers["authorization"], activity)
    [out] = sandbox.records.find("teams", direction="out")
    assert out.status == 200


def test_click_token_fails_validation_with_another_audience(sandbox, connector, receiver) -> None:
    root = start_thread(connector, card_activity())["activityId"]
    sandbox.teams.click(
        f"{receiver.url}/api/messages",
        activity_id=root,
        verb="reject",
        user_object_id=APPROVER_OBJECT_IDS[0],
    )
    [request] = receiver.requests
    token = request.headers["authorization"].removeprefix("Bearer ")
    metadata = httpx.get(sandbox.env()["BROADCASTER_TEAMS_OPENID_URL"]).json()
    key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.key, algorithms=["RS256"], audience="another-bot")


def test_click_merges_input_data_and_refuses_missing_buttons(sandbox, connector, receiver) -> None:
    root = start_thread(connector, card_activity())["activityId"]
    sandbox.teams.click(
        f"{receiver.url}/api/messages",
        activity_id=root,
        verb="reject",
        user_object_id=APPROVER_OBJECT_IDS[0],
        data={"reason": "Fel nummer"},
    )
    data = receiver.requests[0].json()["value"]["action"]["data"]
    assert data == {"announcement": 7, "hash": "abc123", "reason": "Fel nummer"}
    with pytest.raises(LookupError, match="verb 'publish'"):
        sandbox.teams.click(
            f"{receiver.url}/api/messages",
            activity_id=root,
            verb="publish",
            user_object_id=APPROVER_OBJECT_IDS[0],
        )
    with pytest.raises(LookupError):
        sandbox.teams.click(
            f"{receiver.url}/api/messages",
            activity_id="404",
            verb="approve",
            user_object_id=APPROVER_OBJECT_IDS[0],
        )


def test_only_loopback_bots_are_called(sandbox) -> None:
    with pytest.raises(ValueError, match="loopback"):
        sandbox.teams.click(
            "https://bot.example.se/api/messages",
            verb="approve",
            user_object_id=APPROVER_OBJECT_IDS[0],
            data={"hash": "x"},
        )


def test_click_over_the_control_api(sandbox, connector, receiver) -> None:
    root = start_thread(connector, card_activity())["activityId"]
    answer = httpx.post(
        f"{sandbox.base_url}/_sandbox/teams/click",
        json={
            "bot_url": f"{receiver.url}/api/messages",
            "activity_id": root,
            "verb": "approve",
            "user_object_id": APPROVER_OBJECT_IDS[2],
        },
    )
    assert answer.json()["status"] == 200
    activity = receiver.requests[0].json()
    assert activity["from"]["aadObjectId"] == APPROVER_OBJECT_IDS[2]
    validate_like_a_bot(sandbox, receiver.requests[0].headers["authorization"], activity)
