"""Each fault kind produces, in the real SDK, the error it raises against the real platform."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import facebook
import httpx
import msal
import pytest
import requests
from telegram import Bot
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from twilio.base.exceptions import TwilioRestException

from broadcaster.sandbox import (
    BORGHOLM_PAGE_ID,
    MORBYLANGA_PAGE_ID,
    TELEGRAM_CHAT,
    Fault,
    FaultKind,
)

from .conftest import APPROVERS, BOT_SCOPE

RECIPIENT = "+46701234567"


def send_twilio(client, to: str = RECIPIENT) -> str:
    return client.messages.create(to=to, from_="Borgholm", body="Hej").sid


async def telegram_after_start(bot: Bot, inject) -> object:
    """Start the bot (getMe) before injecting, so the fault hits sendMessage."""
    async with bot:
        inject()
        return await bot.send_message(TELEGRAM_CHAT, "Hej")


# ---------------------------------------------------------------------------------------------
# fail


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80001])
def test_fail_with_graph_throttling_codes(sandbox, fb_page, code) -> None:
    sandbox.faults.fail("facebook", status=400, code=code)
    with pytest.raises(facebook.GraphAPIError) as caught:
        fb_page().post(message="x")
    assert caught.value.code == code
    assert sandbox.facebook.posts() == []
    assert fb_page().post(message="x")["id"]  # count=1: the next request is served


def test_fail_with_graph_token_error_and_subcode(sandbox, fb_page) -> None:
    sandbox.faults.fail("facebook", status=400, code=190, subcode=463)
    with pytest.raises(facebook.GraphAPIError) as caught:
        fb_page().post(message="x")
    assert caught.value.code == 190
    assert caught.value.result["error"]["error_subcode"] == 463


def test_fail_429_is_twilio_20429_with_retry_after(sandbox, twilio_client) -> None:
    sandbox.faults.fail("twilio", status=429, retry_after=3, count=2)
    with pytest.raises(TwilioRestException) as caught:
        send_twilio(twilio_client())
    assert (caught.value.status, caught.value.code) == (429, 20429)
    env = sandbox.env()
    account = env["TWILIO_ACCOUNT_SID"]
    url = f"{env['BROADCASTER_TWILIO_API_URL']}/2010-04-01/Accounts/{account}/Messages.json"
    raw = requests.get(url, auth=(env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"]), timeout=5)
    assert raw.status_code == 429
    assert raw.headers["Retry-After"] == "3"
    assert raw.json()["code"] == 20429
    assert send_twilio(twilio_client())
    assert len(sandbox.twilio.messages()) == 1


def test_fail_429_is_ptb_retry_after(sandbox, telegram_bot) -> None:
    with pytest.raises(RetryAfter) as caught:
        asyncio.run(
            telegram_after_start(
                telegram_bot(), lambda: sandbox.faults.fail("telegram", status=429, retry_after=7)
            )
        )
    assert caught.value.retry_after == timedelta(seconds=7)
    assert sandbox.telegram.messages() == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_fail_5xx_is_ptb_network_error_not_bad_request(sandbox, telegram_bot, status) -> None:
    with pytest.raises(NetworkError) as caught:
        asyncio.run(
            telegram_after_start(
                telegram_bot(), lambda: sandbox.faults.fail("telegram", status=status)
            )
        )
    assert not isinstance(caught.value, BadRequest | TimedOut)


def test_fail_on_the_token_endpoint(sandbox, msal_app) -> None:
    app = msal_app()  # discovery has happened
    sandbox.faults.fail("login", status=400, code="invalid_request", message="Bad luck.")
    result = app.acquire_token_for_client(scopes=BOT_SCOPE)
    assert result["error"] == "invalid_request"
    fresh = msal_app()
    sandbox.faults.fail("login", status=503)
    # msal raises (not returns) for a 5xx from the token endpoint, with its own exception type.
    with pytest.raises(msal.exceptions.MsalServiceError, match="503"):
        fresh.acquire_token_for_client(scopes=BOT_SCOPE)


def test_fail_429_on_the_connector(sandbox, connector) -> None:
    sandbox.faults.fail("connector", status=429, retry_after=2)
    answer = connector(
        "POST", f"v3/conversations/{APPROVERS}/activities", json={"type": "message", "text": "x"}
    )
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "2"
    assert answer.json()["error"]["code"] == "Throttled"
    assert sandbox.connector.activities() == []


def test_fail_only_the_target(sandbox, fb_page, twilio_client) -> None:
    sandbox.faults.fail("facebook", status=400, code=32, target=MORBYLANGA_PAGE_ID, count=None)
    assert fb_page(BORGHOLM_PAGE_ID).post(message="x")["id"]
    with pytest.raises(facebook.GraphAPIError):
        fb_page(MORBYLANGA_PAGE_ID).post(message="x")
    sandbox.faults.fail("twilio", status=500, target="+46709999999", count=None)
    assert send_twilio(twilio_client())
    with pytest.raises(TwilioRestException) as caught:
        send_twilio(twilio_client(), to="+46709999999")
    assert caught.value.status == 500


# ---------------------------------------------------------------------------------------------
# ratio and latency


def test_ratio_fails_about_that_share(sandbox) -> None:
    env = sandbox.env()
    url = f"{env['BROADCASTER_TELEGRAM_API_URL']}/bot{env['TELEGRAM_BOT_TOKEN']}/getMe"
    sandbox.faults.ratio("telegram", 0.5, status=502)
    with httpx.Client() as client:
        statuses = [client.get(url).status_code for _ in range(40)]
    assert set(statuses) == {200, 502}
    assert 8 <= statuses.count(502) <= 32
    sandbox.faults.clear()
    sandbox.faults.ratio("telegram", 0.0)
    with httpx.Client() as client:
        assert {client.get(url).status_code for _ in range(10)} == {200}


def test_latency_delays_a_normal_answer(sandbox, twilio_client) -> None:
    sandbox.faults.latency("twilio", 0.3)
    started = time.monotonic()
    assert send_twilio(twilio_client())
    assert time.monotonic() - started >= 0.3


# ---------------------------------------------------------------------------------------------
# hang: no answer before the client's timeout


def test_hang_is_a_requests_read_timeout_for_graph(sandbox, fb_page) -> None:
    sandbox.faults.hang("facebook", seconds=5)
    with pytest.raises(requests.ReadTimeout):
        fb_page(timeout=0.3).post(message="x")
    assert sandbox.facebook.posts() == []
    [record] = sandbox.records.find("facebook")
    assert (record.fault, record.status) == ("hang", None)


def test_hang_with_effect_posts_but_times_out(sandbox, fb_page) -> None:
    sandbox.faults.hang("facebook", seconds=5, effect=True)
    with pytest.raises(requests.ReadTimeout):
        fb_page(timeout=0.3).post(message="x")
    assert len(sandbox.facebook.posts()) == 1


def test_hang_is_twilio_read_timeout(sandbox, twilio_client) -> None:
    sandbox.faults.hang("twilio", seconds=5)
    with pytest.raises(requests.ReadTimeout):
        send_twilio(twilio_client(timeout=0.3))


def test_hang_is_ptb_timed_out(sandbox, telegram_bot) -> None:
    with pytest.raises(TimedOut):
        asyncio.run(
            telegram_after_start(
                telegram_bot(read_timeout=0.3), lambda: sandbox.faults.hang("telegram", seconds=5)
            )
        )


def test_hang_is_httpx_read_timeout(sandbox, connector) -> None:
    sandbox.faults.hang("connector", seconds=5)
    with pytest.raises(httpx.ReadTimeout):
        connector(
            "POST",
            f"v3/conversations/{APPROVERS}/activities",
            json={"type": "message", "text": "x"},
            timeout=0.3,
        )


# ---------------------------------------------------------------------------------------------
# drop: carried out, answer lost


def test_drop_twilio_message_is_sent_and_can_be_found(sandbox, twilio_client, receiver) -> None:
    sandbox.faults.drop("twilio")
    client = twilio_client()
    with pytest.raises(requests.ConnectionError):
        client.messages.create(
            to=RECIPIENT, from_="Borgholm", body="Hej", status_callback=f"{receiver.url}/cb"
        )
    [message] = sandbox.twilio.messages()
    receiver.wait(2)
    # What the adapter does after an ambiguous failure: look before sending again.
    found = client.messages.list(to=RECIPIENT, limit=20)
    assert [m.sid for m in found] == [message.sid]
    [record] = sandbox.records.find("twilio", direction="in", method="POST")
    assert (record.fault, record.status) == ("drop", None)
    assert record.response["sid"] == message.sid


def test_drop_graph_post_exists(sandbox, fb_page) -> None:
    sandbox.faults.drop("facebook")
    with pytest.raises(requests.ConnectionError):
        fb_page().post(message="Hej")
    assert [p["message"] for p in fb_page().feed()["data"]] == ["Hej"]


def test_drop_is_ptb_network_error(sandbox, telegram_bot) -> None:
    with pytest.raises(NetworkError) as caught:
        asyncio.run(telegram_after_start(telegram_bot(), lambda: sandbox.faults.drop("telegram")))
    assert not isinstance(caught.value, TimedOut | BadRequest)
    assert len(sandbox.telegram.messages()) == 1


def test_drop_is_msal_connection_error(sandbox, msal_app) -> None:
    app = msal_app()
    sandbox.faults.drop("login")
    with pytest.raises(requests.ConnectionError):
        app.acquire_token_for_client(scopes=BOT_SCOPE)


def test_drop_is_httpx_remote_protocol_error(sandbox, connector) -> None:
    sandbox.faults.drop("connector")
    with pytest.raises(httpx.RemoteProtocolError):
        connector(
            "POST",
            f"v3/conversations/{APPROVERS}/activities",
            json={"type": "message", "text": "x"},
        )
    assert len(sandbox.connector.activities()) == 1


# ---------------------------------------------------------------------------------------------
# down: refused for a while, nothing carried out


def test_down_for_a_while(sandbox, fb_page, twilio_client) -> None:
    sandbox.faults.down("facebook", 1.0)
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        fb_page().post(message="x")
    assert send_twilio(twilio_client())  # other platforms are up
    while True:  # back after the second has passed, not before
        try:
            assert fb_page().post(message="x")["id"]
            break
        except requests.ConnectionError:
            assert time.monotonic() - started < 30, "still down long after the second ended"
            time.sleep(0.05)
    assert time.monotonic() - started >= 1.0
    assert len(sandbox.facebook.posts()) == 1
    faults = [r.fault for r in sandbox.records.find("facebook")]
    assert faults[-1] is None
    assert set(faults[:-1]) == {"down"}


def test_everything_down_is_ptb_network_error(sandbox, telegram_bot) -> None:
    with pytest.raises(NetworkError) as caught:
        asyncio.run(telegram_after_start(telegram_bot(), lambda: sandbox.faults.down("*", 5)))
    assert not isinstance(caught.value, TimedOut)
    assert sandbox.telegram.messages() == []


# ---------------------------------------------------------------------------------------------
# the control API


def test_faults_over_http(sandbox, twilio_client) -> None:
    control = f"{sandbox.base_url}/_sandbox/faults"
    created = httpx.post(
        control,
        json={"platform": "twilio", "kind": "fail", "status": 429, "retry_after": 2, "count": 5},
    )
    assert created.status_code == 201
    fault_id = created.json()["id"]
    [listed] = httpx.get(control).json()["faults"]
    assert (listed["id"], listed["kind"], listed["status"]) == (fault_id, "fail", 429)
    with pytest.raises(TwilioRestException):
        send_twilio(twilio_client())
    assert httpx.delete(f"{control}/{fault_id}").json() == {"removed": True}
    assert send_twilio(twilio_client())
    bad = httpx.post(control, json={"platform": "twilio", "kind": "explode"})
    assert bad.status_code == 400
    assert httpx.post(control, json={"platform": "myspace", "kind": "fail"}).status_code == 400
    httpx.post(control, json={"platform": "twilio", "kind": "down", "seconds": 10})
    assert httpx.delete(control).json() == {"ok": True}
    assert sandbox.faults.active() == []


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="status"):
        Fault(kind=FaultKind.FAIL, platform="twilio", status=200)
    with pytest.raises(ValueError, match="ratio"):
        Fault(kind=FaultKind.RATIO, platform="twilio", ratio=1.5)
    with pytest.raises(ValueError, match="down needs seconds"):
        Fault(kind=FaultKind.DOWN, platform="twilio")
    with pytest.raises(ValueError, match="unknown fault fields"):
        Fault.from_json({"platform": "twilio", "kind": "fail", "colour": "red"})
