"""The Power Automate Workflows trigger (Teams workflow mode) and the CMS webhook receiver."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from broadcaster.signing import signed_headers

from .conftest import CARD, card_activity


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return parts._replace(query=urlencode(query)).geturl()


def test_workflow_accepts_a_card(sandbox) -> None:
    url = sandbox.env()["TEAMS_MORBYLANGA_WORKFLOW_URL"]
    assert "/triggers/manual/paths/invoke?" in url
    assert "sig=" in url
    answer = httpx.post(url, json=card_activity())
    assert answer.status_code == 202
    assert answer.content == b""
    [post] = sandbox.workflows.posts()
    assert post.cards()[0]["body"] == CARD["body"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sig": "AAAA"}, "DirectApiInvalidAuthorizationSignature"),
        ({"sig": None}, "DirectApiAuthorizationRequired"),
    ],
)
def test_workflow_signature_is_required(sandbox, change, code) -> None:
    url = with_query(sandbox.env()["TEAMS_MORBYLANGA_WORKFLOW_URL"], **change)
    answer = httpx.post(url, json=card_activity())
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == code
    assert sandbox.workflows.posts() == []


def test_workflow_refuses_what_would_fail_the_flow(sandbox, full_specs) -> None:
    url = sandbox.env()["TEAMS_MORBYLANGA_WORKFLOW_URL"]
    no_card = httpx.post(url, json={"type": "message", "text": "x"})
    assert no_card.status_code == 400
    bad_card = httpx.post(url, json=card_activity({**CARD, "body": [{"type": "TextBlock"}]}))
    assert bad_card.status_code == 400
    assert "Adaptive Card" in bad_card.json()["error"]["message"]
    assert sandbox.workflows.posts() == []


def cms_post(sandbox, body: bytes, headers: dict[str, str]) -> httpx.Response:
    url = f"{sandbox.base_url}/cms/api/broadcaster"
    return httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers})


def test_cms_accepts_a_signed_post(sandbox) -> None:
    body = json.dumps({"id": "a1", "title": "Dataintrång"}).encode()
    secret = sandbox.env()["MORBYLANGA_CMS_WEBHOOK_SECRET"]
    answer = cms_post(sandbox, body, signed_headers(secret, int(time.time()), body))
    assert answer.status_code == 200
    [delivery] = sandbox.cms.deliveries()
    assert delivery.path == "/api/broadcaster"
    assert delivery.payload["title"] == "Dataintrång"


@pytest.mark.parametrize("problem", ["wrong secret", "stale", "tampered", "unsigned"])
def test_cms_refuses_bad_signatures(sandbox, problem) -> None:
    body = b'{"id": "a1"}'
    secret = sandbox.env()["MORBYLANGA_CMS_WEBHOOK_SECRET"]
    headers = signed_headers(secret, int(time.time()), body)
    if problem == "wrong secret":
        headers = signed_headers("not-the-secret", int(time.time()), body)
    elif problem == "stale":
        headers = signed_headers(secret, int(time.time()) - 3600, body)
    elif problem == "tampered":
        body = b'{"id": "a2"}'
    else:
        headers = {}
    assert cms_post(sandbox, body, headers).status_code == 401
    assert sandbox.cms.deliveries() == []
