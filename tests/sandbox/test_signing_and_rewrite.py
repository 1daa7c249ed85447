"""broadcaster.signing (CMS webhook HMAC) and broadcaster.channels._rewrite (SDK base URLs)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import requests

from broadcaster.channels._rewrite import (
    GRAPH_URL,
    LOGIN_URL,
    RewritingSession,
    graph_session,
    rewrite_url,
)
from broadcaster.signing import sign_webhook, signed_headers, verify_webhook

NOW = 1_765_567_800
BODY = b'{"title": "Dataintr\xc3\xa5ng"}'


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign_webhook("s3cret", NOW, BODY) == f"sha256={expected}"
    headers = signed_headers("s3cret", NOW, BODY)
    assert headers == {
        "X-Broadcaster-Timestamp": str(NOW),
        "X-Broadcaster-Signature": f"sha256={expected}",
    }


@pytest.mark.parametrize(
    ("secret", "timestamp", "signature", "body", "now", "valid"),
    [
        ("s3cret", str(NOW), None, BODY, NOW, True),
        ("other", str(NOW), None, BODY, NOW, False),
        ("s3cret", str(NOW), None, BODY + b" ", NOW, False),
        ("s3cret", str(NOW), None, BODY, NOW + 301, False),
        ("s3cret", str(NOW), None, BODY, NOW - 301, False),
        ("s3cret", str(NOW), None, BODY, NOW + 299, True),
        ("s3cret", "soon", None, BODY, NOW, False),
        ("s3cret", None, None, BODY, NOW, False),
        ("s3cret", str(NOW), "", BODY, NOW, False),
        ("s3cret", str(NOW), "sha256=00", BODY, NOW, False),
    ],
)
def test_verify_webhook(secret, timestamp, signature, body, now, valid) -> None:
    if signature is None:
        signature = sign_webhook("s3cret", NOW, BODY)
    assert verify_webhook(secret, timestamp, signature, body, now) is valid


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://graph.facebook.com/v23.0/1/feed", "http://127.0.0.1:9/graph/v23.0/1/feed"),
        ("https://graph.facebook.com/", "http://127.0.0.1:9/graph/"),
        (
            "https://graph.facebook.com.evil.example/v23.0",
            "https://graph.facebook.com.evil.example/v23.0",
        ),
        ("https://example.com/graph.facebook.com/", "https://example.com/graph.facebook.com/"),
    ],
)
def test_rewrite_url_only_on_a_path_boundary(url, expected) -> None:
    assert rewrite_url(url, GRAPH_URL, "http://127.0.0.1:9/graph/") == expected


def test_rewrite_url_without_override_is_unchanged() -> None:
    assert (
        rewrite_url(f"{LOGIN_URL}/t/oauth2/v2.0/token", LOGIN_URL, None)
        == f"{LOGIN_URL}/t/oauth2/v2.0/token"
    )


def test_sessions_send_to_the_override_with_a_default_timeout(sandbox) -> None:
    env = sandbox.env()
    with graph_session(env["BROADCASTER_FACEBOOK_API_URL"], timeout=3) as session:
        answer = session.get("https://graph.facebook.com/v23.0/me", timeout=None)
    assert answer.json()["error"]["code"] == 104  # reached the sandbox: no token given
    [record] = sandbox.records.find("facebook")
    assert record.path == "/graph/v23.0/me"

    with RewritingSession(LOGIN_URL, env["BROADCASTER_TEAMS_LOGIN_URL"], timeout=0.2) as session:
        sandbox.faults.hang("login", seconds=2)
        with pytest.raises(requests.ReadTimeout):
            session.get(
                f"{LOGIN_URL}/{env['TEAMS_TENANT_ID']}/v2.0/.well-known/openid-configuration"
            )
