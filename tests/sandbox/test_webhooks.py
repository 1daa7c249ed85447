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


def cms_url(sandbox, suffix: str = "", **query: str | None) -> str:
    """The CMS URL from the sandbox's .env (with its token), a resource path and query changes."""
    url = sandbox.env()["MORBYLANGA_CMS_WEBHOOK_URL"]
    parts = urlsplit(url)
    url = parts._replace(path=parts.path + suffix).geturl()
    return with_query(url, **query) if query else url


def cms_secret(sandbox) -> str:
    return sandbox.env()["MORBYLANGA_CMS_WEBHOOK_SECRET"]


def document(uid: str = "a1", revision: int = 1, title: str = "Dataintrång") -> bytes:
    return json.dumps({"id": uid, "revision": revision, "title": title}).encode()


def cms_request(
    sandbox,
    method: str,
    body: bytes,
    *,
    suffix: str = "",
    key: str | None = "k1",
    at: int | None = None,
    secret: str | None = None,
    url: str | None = None,
) -> httpx.Response:
    """A request signed as broadcaster signs it (``secret``/``at`` override to break it)."""
    headers = {"Content-Type": "application/json"}
    headers |= signed_headers(secret or cms_secret(sandbox), at or int(time.time()), body)
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.request(method, url or cms_url(sandbox, suffix), content=body, headers=headers)


def test_the_cms_url_carries_a_token(sandbox) -> None:
    url = sandbox.env()["MORBYLANGA_CMS_WEBHOOK_URL"]
    assert url.startswith(f"{sandbox.base_url}/cms/api/broadcaster?token=")
    assert sandbox.credentials.cms_token in url


def test_cms_creates_a_resource_for_a_signed_post(sandbox) -> None:
    answer = cms_request(sandbox, "POST", document())
    assert answer.status_code == 201
    assert answer.json() == {"id": "1"}
    assert answer.headers["location"] == f"{sandbox.base_url}/cms/api/broadcaster/1"
    [delivery] = sandbox.cms.deliveries()
    assert (delivery.method, delivery.path, delivery.resource) == ("POST", "/api/broadcaster", "1")
    assert delivery.payload["title"] == "Dataintrång"
    [resource] = sandbox.cms.resources()
    assert (resource.id, resource.uid, resource.revision) == ("1", "a1", 1)


@pytest.mark.parametrize(
    "problem", ["wrong secret", "old timestamp", "future timestamp", "tampered", "unsigned"]
)
def test_cms_refuses_what_is_not_signed_with_the_secret_just_now(sandbox, problem) -> None:
    body = document()
    secret = cms_secret(sandbox)
    now = int(time.time())
    headers = {"Content-Type": "application/json", "Idempotency-Key": "k1"}
    if problem == "wrong secret":
        headers |= signed_headers("not-the-secret", now, body)
    elif problem == "old timestamp":  # a captured request replayed after the window
        headers |= signed_headers(secret, now - 310, body)
    elif problem == "future timestamp":
        headers |= signed_headers(secret, now + 310, body)
    elif problem == "tampered":  # signed, then changed on the way
        headers |= signed_headers(secret, now, body)
        body = document(title="Allt är lugnt")
    answer = httpx.post(cms_url(sandbox), content=body, headers=headers)
    assert answer.status_code == 401
    assert "signature" in answer.json()["error"]
    assert sandbox.cms.deliveries() == []
    assert sandbox.cms.resources() == []


def test_cms_takes_a_timestamp_inside_the_replay_window(sandbox) -> None:
    assert sandbox.cms.tolerance_s == 300
    answer = cms_request(sandbox, "POST", document(), at=int(time.time()) - 290)
    assert answer.status_code == 201


@pytest.mark.parametrize("token", ["wrong", None])
def test_cms_refuses_a_url_without_its_token(sandbox, token) -> None:
    url = cms_url(sandbox, token=token)
    answer = cms_request(sandbox, "POST", document(), url=url)
    assert answer.status_code == 401
    assert "token" in answer.json()["error"]
    assert sandbox.cms.resources() == []


def test_cms_answers_a_repeated_key_as_the_first_time(sandbox) -> None:
    first = cms_request(sandbox, "POST", document(), key="uid.1.cms")
    again = cms_request(sandbox, "POST", document(), key="uid.1.cms")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json() == {"id": "1"}
    assert again.headers["idempotent-replayed"] == "true"
    assert len(sandbox.cms.resources()) == 1
    # The same key for another body is a mistake the CMS does not guess about.
    other = cms_request(sandbox, "POST", document(title="Annat"), key="uid.1.cms")
    assert other.status_code == 422
    # And a POST without a key is refused: a repeat could not be recognised.
    assert cms_request(sandbox, "POST", document(), key=None).status_code == 400


def test_cms_keeps_one_resource_per_announcement_and_its_highest_revision(sandbox) -> None:
    assert cms_request(sandbox, "POST", document(revision=2, title="Rättad"), key="r2").json() == {
        "id": "1"
    }
    late = cms_request(sandbox, "POST", document(revision=1, title="Först"), key="r1")
    assert (late.status_code, late.json()) == (200, {"id": "1"})
    [resource] = sandbox.cms.resources()
    assert (resource.revision, resource.document["title"]) == (2, "Rättad")
    assert resource.history == ["POST 2", "POST 1"]


def test_cms_put_replaces_and_delete_removes(sandbox) -> None:
    cms_request(sandbox, "POST", document(), key="a1.1")
    put = cms_request(sandbox, "PUT", document(revision=2, title="Rättad"), suffix="/1", key="a1.2")
    assert (put.status_code, put.json()) == (200, {"id": "1"})
    assert sandbox.cms.resource("1").document["title"] == "Rättad"
    # An older revision arriving late changes nothing.
    assert cms_request(sandbox, "PUT", document(revision=1), suffix="/1").status_code == 200
    assert sandbox.cms.resource("1").revision == 2
    removal = json.dumps({"id": "a1", "resource": "1"}).encode()
    assert cms_request(sandbox, "DELETE", removal, suffix="/1", key="a1.3").status_code == 204
    assert sandbox.cms.resources() == []
    assert sandbox.cms.resource("1").deleted
    # Gone is gone: a second DELETE and a PUT find nothing.
    assert cms_request(sandbox, "DELETE", removal, suffix="/1").status_code == 404
    assert cms_request(sandbox, "PUT", document(revision=3), suffix="/1").status_code == 404
    assert [d.method for d in sandbox.cms.deliveries()] == ["POST", "PUT", "PUT", "DELETE"]


def test_cms_refuses_a_signature_made_for_another_resource(sandbox) -> None:
    cms_request(sandbox, "POST", document(uid="a1"), key="a1")
    cms_request(sandbox, "POST", document(uid="b2"), key="b2")
    # A correctly signed body about announcement a1, sent to b2's resource: refused.
    assert (
        cms_request(sandbox, "PUT", document(uid="a1", revision=2), suffix="/2").status_code == 409
    )
    removal = json.dumps({"id": "a1", "resource": "1"}).encode()
    assert cms_request(sandbox, "DELETE", removal, suffix="/2").status_code == 409
    assert {r.uid: r.revision for r in sandbox.cms.resources()} == {"a1": 1, "b2": 1}


def test_cms_faults_answer_in_its_format(sandbox) -> None:
    sandbox.faults.fail("cms", status=429, retry_after=7)
    answer = cms_request(sandbox, "POST", document())
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "7")
    assert "error" in answer.json()
    assert sandbox.cms.resources() == []
