"""The Twilio emulator driven by twilio's own Client through BROADCASTER_TWILIO_API_URL."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from .conftest import Receiver

RECIPIENT = "+46701234567"
SERVICE_SID = "MG" + "a" * 32


def _callbacks(receiver: Receiver, count: int) -> list[dict[str, str]]:
    return [r.form for r in receiver.wait(count)]


def test_create_returns_realistic_message(sandbox, twilio_client) -> None:
    message = twilio_client().messages.create(to=RECIPIENT, from_="Borgholm", body="Hej!")
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert message.to == RECIPIENT
    assert message.from_ == "Borgholm"
    assert message.num_segments == "1"
    assert message.account_sid == sandbox.env()["TWILIO_ACCOUNT_SID"]
    assert message.direction == "outbound-api"
    [record] = sandbox.records.find("twilio")
    assert record.status == 201
    assert record.target == RECIPIENT


def test_sids_are_unique(twilio_client) -> None:
    client = twilio_client()
    sids = {
        client.messages.create(to=RECIPIENT, from_="Borgholm", body=f"{n}").sid for n in range(5)
    }
    assert len(sids) == 5


def test_created_message_matches_the_openapi_schema(
    sandbox, twilio_client, full_specs: Path
) -> None:
    from openapi_schema_validator import OAS30Validator

    twilio_client().messages.create(to=RECIPIENT, messaging_service_sid=SERVICE_SID, body="Hej")
    spec = json.loads((full_specs / "twilio/twilio_api_v2010.json").read_text())
    schema = {"$ref": "#/components/schemas/api.v2010.account.message", **spec}
    [record] = sandbox.records.find("twilio")
    OAS30Validator(schema).validate(record.response)
    assert record.response["status"] == "accepted"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"to": "", "from_": "Borgholm", "body": "x"}, 21604),  # no To
        ({"to": RECIPIENT, "body": "x"}, 21603),  # neither From nor MessagingServiceSid
        ({"to": RECIPIENT, "from_": "Borgholm"}, 21602),  # no Body
        ({"to": "0701234567", "from_": "Borgholm", "body": "x"}, 21211),
        ({"to": RECIPIENT, "from_": "Not a valid sender!", "body": "x"}, 21212),
        ({"to": RECIPIENT, "from_": "Borgholm", "body": "x" * 1601}, 21617),
        ({"to": "+15005550004", "from_": "Borgholm", "body": "x"}, 21610),
        ({"to": "+15005550009", "from_": "Borgholm", "body": "x"}, 21614),
    ],
)
def test_refusals_have_twilio_codes(sandbox, twilio_client, fields, code) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio_client().messages.create(**fields)
    assert caught.value.status == 400
    assert caught.value.code == code
    assert sandbox.twilio.messages() == []


def test_error_body_has_twilio_shape(sandbox) -> None:
    env = sandbox.env()
    account = env["TWILIO_ACCOUNT_SID"]
    url = f"{env['BROADCASTER_TWILIO_API_URL']}/2010-04-01/Accounts/{account}/Messages.json"
    answer = requests.post(
        url,
        data={"Body": "x"},
        auth=(env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"]),
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "code": 21604,
        "message": "A 'To' phone number is required.",
        "more_info": "https://www.twilio.com/docs/errors/21604",
        "status": 400,
    }


def test_schema_checks_messaging_service_sid(twilio_client, full_specs: Path) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio_client().messages.create(to=RECIPIENT, messaging_service_sid="MG123", body="x")
    assert caught.value.code == 21701


def test_opted_out_recipient_is_21610(sandbox, twilio_client) -> None:
    sandbox.twilio.opt_out(RECIPIENT)
    with pytest.raises(TwilioRestException) as caught:
        twilio_client().messages.create(to=RECIPIENT, from_="Borgholm", body="x")
    assert caught.value.code == 21610


def test_wrong_auth_token_is_20003(twilio_client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio_client(auth_token="0" * 32).messages.create(to=RECIPIENT, from_="Borgholm", body="x")
    assert (caught.value.status, caught.value.code) == (401, 20003)


def test_status_callbacks_are_signed_for_twilios_validator(
    sandbox, twilio_client, receiver
) -> None:
    callback = f"{receiver.url}/twilio/status?d=42"
    message = twilio_client().messages.create(
        to=RECIPIENT, from_="Borgholm", body="Hej", status_callback=callback
    )
    received = receiver.wait(2)
    validator = RequestValidator(sandbox.env()["TWILIO_AUTH_TOKEN"])
    for request in received:
        assert request.path == "/twilio/status?d=42"
        assert validator.validate(callback, request.form, request.headers["x-twilio-signature"])
        assert not validator.validate(
            callback, {**request.form, "MessageStatus": "x"}, request.headers["x-twilio-signature"]
        )
    assert [r.form["MessageStatus"] for r in received] == ["sent", "delivered"]
    assert {r.form["MessageSid"] for r in received} == {message.sid}
    tokens = {r.headers["i-twilio-idempotency-token"] for r in received}
    assert len(tokens) == 2
    assert received[1].form["RawDlrDoneDate"]
    assert "ErrorCode" not in received[1].form


def test_messaging_service_flow_starts_accepted_then_queued(
    sandbox, twilio_client, receiver
) -> None:
    message = twilio_client().messages.create(
        to=RECIPIENT,
        messaging_service_sid=SERVICE_SID,
        body="Hej",
        status_callback=f"{receiver.url}/cb",
    )
    assert message.status == "accepted"
    statuses = [f["MessageStatus"] for f in _callbacks(receiver, 3)]
    assert statuses == ["queued", "sent", "delivered"]
    assert receiver.requests[0].form["MessagingServiceSid"] == SERVICE_SID


def test_scripted_undelivered_outcome(sandbox, twilio_client, receiver) -> None:
    client = twilio_client()
    number = "+46701230003"  # default rule: ending 0003 -> undelivered 30003
    message = client.messages.create(
        to=number, from_="Borgholm", body="x", status_callback=f"{receiver.url}/cb"
    )
    final = _callbacks(receiver, 2)[-1]
    assert (final["MessageStatus"], final["ErrorCode"]) == ("undelivered", "30003")
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)

    sandbox.twilio.set_outcome(RECIPIENT, "failed", 30008)
    client.messages.create(
        to=RECIPIENT, from_="Borgholm", body="y", status_callback=f"{receiver.url}/cb"
    )
    final = _callbacks(receiver, 3)[-1]
    assert (final["MessageStatus"], final["ErrorCode"]) == ("failed", "30008")


def test_fetch_and_list_for_verification(sandbox, twilio_client, receiver) -> None:
    client = twilio_client()
    before = datetime.now(UTC) - timedelta(minutes=1)
    message = client.messages.create(
        to=RECIPIENT, from_="Borgholm", body="Hej", status_callback=f"{receiver.url}/cb"
    )
    client.messages.create(to="+46709999999", from_="Borgholm", body="Annan")
    receiver.wait(2)
    found = client.messages.list(to=RECIPIENT, date_sent_after=before, limit=20)
    assert [m.sid for m in found] == [message.sid]
    assert found[0].body == "Hej"
    assert (
        client.messages.list(to=RECIPIENT, date_sent_after=datetime.now(UTC) + timedelta(hours=1))
        == []
    )
    assert client.messages(message.sid).fetch().status == "delivered"
    assert len(client.messages.list(limit=50)) == 2
    with pytest.raises(TwilioRestException) as missing:
        client.messages("SM" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)


def test_list_pages(sandbox, twilio_client) -> None:
    client = twilio_client()
    for n in range(5):
        client.messages.create(to=RECIPIENT, from_="Borgholm", body=f"{n}")
    page = client.messages.page(page_size=2)
    bodies = [m.body for m in page]
    while (page := page.next_page()) is not None:
        bodies += [m.body for m in page]
    assert bodies == ["4", "3", "2", "1", "0"]


def test_callbacks_only_go_to_loopback(sandbox, twilio_client) -> None:
    twilio_client().messages.create(
        to=RECIPIENT,
        from_="Borgholm",
        body="x",
        status_callback="https://broadcaster.example.se/twilio",
    )
    outgoing = sandbox.records.wait_for(lambda r: r.direction == "out", count=2)
    assert all(r.status is None and "loopback" in (r.note or "") for r in outgoing)
