"""The Graph API emulator driven by facebook-sdk's GraphAPI through BROADCASTER_FACEBOOK_API_URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

import facebook
import pytest
import requests

from broadcaster.sandbox import BORGHOLM_PAGE_ID, MORBYLANGA_PAGE_ID

from .conftest import PageFactory


def test_post_read_edit_delete_with_graphapi(sandbox, fb_page: PageFactory) -> None:
    page = fb_page()
    created = page.post(message="Kommunens servrar är nedstängda.", link="https://www.borgholm.se")
    post_id = created["id"]
    assert re.fullmatch(rf"{BORGHOLM_PAGE_ID}_\d+", post_id)

    feed = page.feed()
    assert [p["id"] for p in feed["data"]] == [post_id]
    assert feed["data"][0]["message"] == "Kommunens servrar är nedstängda."
    assert "created_time" in feed["data"][0]

    assert page.edit(post_id, "Rättelse: servrarna är nedstängda.") == {"success": True}
    assert (
        page.get(post_id, fields="message,link")["message"] == "Rättelse: servrarna är nedstängda."
    )

    assert page.delete(post_id) == {"success": True}
    assert page.feed()["data"] == []
    assert [p.id for p in sandbox.facebook.posts(include_deleted=True)] == [post_id]


def test_post_ids_are_unique_per_post(fb_page: PageFactory) -> None:
    page = fb_page()
    ids = {page.post(message=f"Uppdatering {n}")["id"] for n in range(3)}
    assert len(ids) == 3


def test_feed_verification_read_with_since_and_paging(sandbox, fb_page: PageFactory) -> None:
    page = fb_page()
    for n in range(5):
        page.post(message=f"Läget {n}")
    newest_first = [p["message"] for p in page.feed(limit=2)["data"]]
    assert newest_first == ["Läget 4", "Läget 3"]
    everything = list(
        page.graph.get_all_connections(
            BORGHOLM_PAGE_ID, "feed", limit=2, appsecret_proof=page.proof
        )
    )
    assert [p["message"] for p in everything] == [f"Läget {n}" for n in range(4, -1, -1)]
    created = sandbox.facebook.posts()[-1].created_time
    assert len(page.feed(since=int(created) + 10)["data"]) == 0


def test_scheduled_posts_stay_out_of_the_feed(sandbox, fb_page: PageFactory) -> None:
    page = fb_page()
    when = int(time.time()) + 3600
    post_id = page.post(message="Senare", published="false", scheduled_publish_time=when)["id"]
    assert page.feed()["data"] == []
    assert page.get(post_id, fields="is_published,scheduled_publish_time") == {
        "is_published": False,
        "scheduled_publish_time": when,
    }
    with pytest.raises(facebook.GraphAPIError, match="scheduled publish time"):
        page.post(message="För snart", published="false", scheduled_publish_time=int(time.time()))


def test_page_object_and_me(fb_page: PageFactory) -> None:
    page = fb_page(MORBYLANGA_PAGE_ID)
    assert page.get("me") == {"name": "Mörbylånga kommun", "id": MORBYLANGA_PAGE_ID}


def test_bad_token_is_graph_error_190(fb_page: PageFactory) -> None:
    page = fb_page(token="EAABnotatoken")
    with pytest.raises(facebook.GraphAPIError) as caught:
        page.post(message="x")
    assert caught.value.code == 190
    assert caught.value.type == "OAuthException"


@pytest.mark.parametrize(
    ("reason", "subcode"), [("expired", 463), ("password_changed", 460), ("invalid", 467)]
)
def test_invalidated_token_has_190_with_subcode(sandbox, fb_page, reason, subcode) -> None:
    sandbox.facebook.invalidate_token(BORGHOLM_PAGE_ID, reason)
    with pytest.raises(facebook.GraphAPIError) as caught:
        fb_page().post(message="x")
    assert caught.value.code == 190
    assert caught.value.result["error"]["error_subcode"] == subcode
    sandbox.facebook.restore_token(BORGHOLM_PAGE_ID)
    assert fb_page().post(message="x")["id"]


def test_appsecret_proof_is_required_and_checked(fb_page: PageFactory) -> None:
    page = fb_page(app_secret="0" * 32)
    with pytest.raises(facebook.GraphAPIError) as wrong:
        page.post(message="x")
    assert wrong.value.code == 100
    assert "appsecret_proof" in str(wrong.value)
    with pytest.raises(facebook.GraphAPIError) as missing:
        page.graph.put_object(BORGHOLM_PAGE_ID, "feed", message="x")
    assert missing.value.code == 100
    assert "require an appsecret_proof" in str(missing.value)


def test_token_of_another_page_is_refused(sandbox, fb_page: PageFactory) -> None:
    env = sandbox.env()
    page = fb_page(BORGHOLM_PAGE_ID, token=env["FB_MORBYLANGA_PAGE_TOKEN"])
    with pytest.raises(facebook.GraphAPIError) as caught:
        page.post(message="x")
    assert caught.value.code == 200
    assert sandbox.facebook.posts() == []


def test_duplicate_post_is_506(fb_page: PageFactory) -> None:
    page = fb_page()
    page.post(message="Samma text")
    with pytest.raises(facebook.GraphAPIError) as caught:
        page.post(message="Samma text")
    assert caught.value.code == 506


def test_missing_message_and_deleted_post(fb_page: PageFactory) -> None:
    page = fb_page()
    with pytest.raises(facebook.GraphAPIError) as empty:
        page.post()
    assert empty.value.code == 100
    post_id = page.post(message="x")["id"]
    page.delete(post_id)
    with pytest.raises(facebook.GraphAPIError) as gone:
        page.edit(post_id, "y")
    assert gone.value.code == 100
    assert gone.value.result["error"]["error_subcode"] == 33


def test_answers_are_json_with_usage_headers(sandbox) -> None:
    env = sandbox.env()
    url = f"{env['BROADCASTER_FACEBOOK_API_URL']}v23.0/{BORGHOLM_PAGE_ID}/feed"
    answer = requests.get(url, params={"access_token": "bad"}, timeout=5)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"] == 190
    assert {"message", "type", "code", "fbtrace_id"} <= set(answer.json()["error"])

    token = env["FB_BORGHOLM_PAGE_TOKEN"]
    proof = hmac.new(env["FB_APP_SECRET"].encode(), token.encode(), hashlib.sha256).hexdigest()
    ok = requests.get(url, params={"access_token": token, "appsecret_proof": proof}, timeout=5)
    assert ok.status_code == 200
    assert json.loads(ok.headers["X-App-Usage"])["call_count"] >= 0
    page_usage = json.loads(ok.headers["X-Business-Use-Case-Usage"])[BORGHOLM_PAGE_ID]
    assert page_usage[0]["type"] == "pages"
    assert ok.headers["facebook-api-version"] == "v23.0"


def test_unknown_path_is_graph_error(sandbox) -> None:
    url = sandbox.env()["BROADCASTER_FACEBOOK_API_URL"] + "v23.0/a/b/c/d"
    answer = requests.get(url, timeout=5)
    assert answer.json()["error"]["code"] == 2500


def test_requests_are_recorded_with_target(sandbox, fb_page: PageFactory) -> None:
    fb_page().post(message="Hej")
    [record] = sandbox.records.find("facebook")
    assert record.method == "POST"
    assert record.target == BORGHOLM_PAGE_ID
    assert record.field("message") == "Hej"
    assert record.status == 200
    assert record.response["id"].startswith(BORGHOLM_PAGE_ID + "_")
