"""`POST /api/messages` over real HTTP with the sandbox acting as Teams: only requests whose
bearer token Bot Framework (or the bot's tenant) signed for this bot and this service URL reach
the card action handler; every other one is refused with 401, audited, and changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from broadcaster.sandbox.keys import SigningKey
from broadcaster.server.bot_messages import NOT_CONFIGURED
from tests.server.botframework import (
    APPROVER,
    BOT_FRAMEWORK,
    CARD_RESPONSE,
    BotServer,
    start_bot_server,
    stop_bot_server,
    unsigned,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def assert_refused(bot: BotServer, answer: httpx.Response, reason: str) -> dict[str, Any]:
    """401 with nothing but "unauthorized", one audit entry with ``reason``, nothing else done."""
    assert (answer.status_code, answer.json()) == (401, {"error": "unauthorized"})
    assert answer.headers["www-authenticate"] == "Bearer"
    [event] = bot.refusals()
    assert (event.actor, event.action, event.announcement_id) == (
        "teams",
        "bot_request_refused",
        None,
    )
    assert reason in event.details["reason"]
    assert event.details["client_ip"] == "127.0.0.1"
    assert event.details["endpoint"] == "/api/messages"
    assert event.details["aad_object_id"] == APPROVER
    assert bot.card_actions.calls == []
    assert [e.action for e in bot.events()] == ["bot_request_refused"]
    return event.details


# ---------------------------------------------------------------------------------------------
# Accepted


def test_a_click_sent_as_teams_reaches_the_card_action_handler(bot: BotServer) -> None:
    answer = bot.sandbox.teams.click(bot.url, verb="approve", user_object_id=APPROVER)

    assert (answer.status_code, answer.json()) == (200, CARD_RESPONSE)
    [(activity, caller)] = bot.card_actions.calls
    assert activity["name"] == "adaptiveCard/action"
    assert activity["from"]["aadObjectId"] == APPROVER
    assert caller.client_ip == "127.0.0.1"
    assert caller.claims["iss"] == BOT_FRAMEWORK
    assert caller.claims["aud"] == bot.sandbox.credentials.teams_app_id
    assert bot.refusals() == []


@pytest.mark.parametrize(
    "issuer", ["https://sts.windows.net/{}/", "https://login.microsoftonline.com/{}/v2.0"]
)
def test_a_token_issued_by_the_bots_own_tenant_is_accepted(bot: BotServer, issuer: str) -> None:
    token = bot.tenant_token(issuer.format(bot.sandbox.credentials.teams_tenant_id))

    answer = bot.post(token=token)

    assert (answer.status_code, answer.json()) == (200, CARD_RESPONSE)
    [(_, caller)] = bot.card_actions.calls
    assert caller.claims["tid"] == bot.sandbox.credentials.teams_tenant_id
    assert bot.key_fetches("login") == 1 and bot.key_fetches("botframework") == 0


@pytest.mark.parametrize(
    "times",
    [{"exp": -240}, {"nbf": 240}],
    ids=["expired-4-minutes-ago", "valid-in-4-minutes"],
)
def test_a_token_within_five_minutes_of_skew_is_accepted(
    bot: BotServer, times: dict[str, int]
) -> None:
    now = int(time.time())
    token = bot.token(**{name: now + offset for name, offset in times.items()})

    assert bot.post(token=token).status_code == 200
    assert len(bot.card_actions.calls) == 1


def test_a_service_url_differing_only_by_a_trailing_slash_is_the_same(bot: BotServer) -> None:
    service_url = bot.sandbox.env()["BROADCASTER_TEAMS_SERVICE_URL"]
    assert service_url.endswith("/")
    token = bot.token(serviceurl=service_url.rstrip("/"))

    assert bot.post(token=token).status_code == 200


def test_without_a_card_action_handler_the_click_gets_an_error_invoke_response(
    bot: BotServer,
) -> None:
    bot.context.card_actions = None

    answer = bot.post()

    assert answer.status_code == 200
    assert answer.json() == {
        "statusCode": 503,
        "type": "application/vnd.microsoft.error",
        "value": {"code": "ServiceUnavailable", "message": answer.json()["value"]["message"]},
    }
    assert "broadcaster approve" in answer.json()["value"]["message"]


@pytest.mark.parametrize("kind", ["message", "conversationUpdate", "installationUpdate"])
def test_other_verified_activities_get_an_empty_200(bot: BotServer, kind: str) -> None:
    activity = bot.activity(type=kind)
    del activity["name"]

    answer = bot.post(activity)

    assert (answer.status_code, answer.content) == (200, b"")
    assert bot.card_actions.calls == [] and bot.events() == []


def test_an_invoke_that_is_not_a_card_action_is_not_implemented(bot: BotServer) -> None:
    answer = bot.post(bot.activity(name="composeExtension/query"))

    assert answer.status_code == 501
    assert bot.card_actions.calls == []


# ---------------------------------------------------------------------------------------------
# Refused: one test per way a token can be wrong


def test_an_unsigned_token_is_refused(bot: BotServer) -> None:
    token = unsigned(bot.claims(), kid=bot.sandbox.botframework.key.kid)

    details = assert_refused(bot, bot.post(token=token), "algorithm is 'none', not RS256")
    # What the token claimed, unverified, for whoever reads the audit log.
    assert details["issuer"] == BOT_FRAMEWORK
    assert details["audience"] == bot.sandbox.credentials.teams_app_id


def test_a_token_signed_with_hmac_over_the_public_key_is_refused(bot: BotServer) -> None:
    """The algorithm confusion attack: HS256 keyed with the (public) RSA key."""
    public = bot.sandbox.botframework.key.private_key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT itself refuses to make such a token, so it is put together by hand.
    header = {"alg": "HS256", "typ": "JWT", "kid": bot.sandbox.botframework.key.kid}
    signed = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(bot.claims()).encode())}"
    signature = hmac.new(pem, signed.encode(), hashlib.sha256).digest()
    token = f"{signed}.{b64url(signature)}"

    assert_refused(bot, bot.post(token=token), "algorithm is 'HS256', not RS256")


def test_a_token_signed_by_an_unknown_key_is_refused(bot: BotServer, stranger: SigningKey) -> None:
    assert_refused(bot, bot.post(token=bot.token(stranger)), "signed by an unknown key")


def test_a_token_naming_a_published_key_but_signed_by_another_is_refused(
    bot: BotServer, stranger: SigningKey
) -> None:
    header = {"kid": bot.sandbox.botframework.key.kid, "typ": "JWT"}
    token = jwt.encode(bot.claims(), stranger.private_key, algorithm="RS256", headers=header)

    assert_refused(bot, bot.post(token=token), "signature does not match")


def test_an_expired_token_is_refused(bot: BotServer) -> None:
    now = int(time.time())
    token = bot.token(nbf=now - 3900, exp=now - 301 - 60)

    assert_refused(bot, bot.post(token=token), "has expired")


def test_a_token_not_yet_valid_is_refused(bot: BotServer) -> None:
    now = int(time.time())
    token = bot.token(nbf=now + 301 + 60, exp=now + 3600)

    assert_refused(bot, bot.post(token=token), "not valid yet")


def test_a_token_for_another_audience_is_refused(bot: BotServer) -> None:
    token = bot.token(aud="https://api.botframework.com")

    details = assert_refused(bot, bot.post(token=token), "another audience")
    assert details["audience"] == "https://api.botframework.com"


def test_a_token_from_another_issuer_is_refused(bot: BotServer) -> None:
    other_tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    token = bot.token(iss=f"https://sts.windows.net/{other_tenant}/")

    details = assert_refused(bot, bot.post(token=token), "is neither Bot Framework nor tenant")
    assert details["issuer"] == f"https://sts.windows.net/{other_tenant}/"
    assert bot.key_fetches() == 0  # no key is fetched for an issuer that is not accepted


def test_a_token_for_another_service_url_is_refused(bot: BotServer) -> None:
    token = bot.token(serviceurl="https://smba.trafficmanager.net/emea/")

    assert_refused(bot, bot.post(token=token), "is not the activity's serviceUrl")


# ---------------------------------------------------------------------------------------------
# Refused: more ways


def test_a_tenant_token_naming_another_tenant_in_tid_is_refused(bot: BotServer) -> None:
    tenant = bot.sandbox.credentials.teams_tenant_id
    token = bot.tenant_token(f"https://login.microsoftonline.com/{tenant}/v2.0", tid="other")

    assert_refused(bot, bot.post(token=token), "another tenant")


def test_a_token_without_serviceurl_is_refused(bot: BotServer) -> None:
    claims = bot.claims()
    del claims["serviceurl"]

    assert_refused(
        bot, bot.post(token=bot.sandbox.botframework.key.sign(claims)), "no serviceurl claim"
    )


def test_a_key_not_endorsed_for_the_activitys_channel_is_refused(bot: BotServer) -> None:
    assert_refused(bot, bot.post(bot.activity(channelId="webchat")), "not endorsed")


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "no Authorization header"),
        ("Basic dXNlcjpwYXNz", "not a Bearer token"),
        ("Bearer not-a-jwt", "not a JWT"),
    ],
)
def test_a_request_without_a_bearer_jwt_is_refused(
    bot: BotServer, authorization: str | None, reason: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    assert_refused(bot, bot.post(token="", headers=headers), reason)


def test_without_teams_bot_every_request_is_refused_and_the_log_says_what_to_configure(
    workspace_dir: Path, database_url: str, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="broadcaster.server.bot"):
        server = start_bot_server(workspace_dir, database_url, sandbox, teams_bot=False)
        try:
            answer = server.post()
            refusals = server.refusals()
        finally:
            stop_bot_server(server)

    assert (answer.status_code, answer.json()) == (401, {"error": "unauthorized"})
    assert [e.details["reason"] for e in refusals] == [NOT_CONFIGURED]
    assert server.card_actions.calls == []
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert any(m.startswith("/api/messages is off") and "[teams_bot]" in m for _, m in logged)
    assert any(
        level == "WARNING" and m.startswith("refused a request to /api/messages: add [teams_bot]")
        for level, m in logged
    )


# ---------------------------------------------------------------------------------------------
# HTTP: bad bodies, large bodies, other routes; never a traceback


@pytest.mark.parametrize(
    "body",
    [b"{", b"", b"[]", b'"invoke"', b"\xff\xfe", b"[" * 60_000],
    ids=["truncated", "empty", "array", "string", "not-utf8", "deeply-nested"],
)
def test_a_body_that_is_not_a_json_object_is_400(bot: BotServer, body: bytes) -> None:
    answer = httpx.post(
        bot.url,
        content=body,
        headers={"Authorization": f"Bearer {bot.token()}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert answer.status_code == 400
    assert "JSON object" in answer.json()["error"]
    assert bot.card_actions.calls == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_413(bot: BotServer, chunked: bool) -> None:
    body = b'{"pad": "' + b"x" * bot.context.max_body_bytes + b'"}'
    content: Any = iter([body[:1000], body[1000:]]) if chunked else body

    answer = httpx.post(
        bot.url, content=content, headers={"Authorization": f"Bearer {bot.token()}"}, timeout=30
    )

    assert answer.status_code == 413
    assert "larger than" in answer.json()["error"]
    assert bot.card_actions.calls == []


def test_unknown_routes_are_404_and_other_methods_405(bot: BotServer) -> None:
    unknown = httpx.post(bot.url.replace("/api/messages", "/api/other"), json={}, timeout=10)
    get = httpx.get(bot.url, timeout=10)

    assert (unknown.status_code, unknown.json()) == (404, {"error": "not found"})
    assert (get.status_code, get.json()) == (405, {"error": "method not allowed"})
    assert "Traceback" not in unknown.text + get.text
