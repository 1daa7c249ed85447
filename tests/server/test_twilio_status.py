"""`POST /twilio/status` over real HTTP: only Twilio's signed callbacks change a delivery."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from broadcaster.server.twilio_apply import TokenPruning
from broadcaster.store.audit import list_events
from broadcaster.store.callbacks import claim_token
from broadcaster.store.schema import callback_tokens
from tests.server.conftest import (
    BORGHOLM_TOKEN,
    MORBYLANGA_TOKEN,
    PUBLIC,
    RECIPIENT,
    SHARED_KEY,
    Caller,
    ServeFactory,
    callback_form,
    delivery,
    sid_for,
    sms_deliveries,
)


def refusals(app) -> list[dict]:
    with app.store.read() as conn:
        return [e.details for e in list_events(conn, actions=["callback_refused"])]


def test_valid_callbacks_record_the_status_and_error_code(serve_factory: ServeFactory) -> None:
    running = serve_factory()
    first, second = sms_deliveries(running.app, 2)
    caller = Caller(running.url)

    answer = caller.post(first.id, callback_form(first.id, "sent"))
    assert (answer.status_code, answer.json()) == (200, {"result": "applied"})
    assert delivery(running.app, first.id).platform_status == "sent"
    assert caller.post(first.id, callback_form(first.id, "delivered")).json()["result"] == (
        "applied"
    )
    failed = callback_form(second.id, "undelivered", error_code=30003)
    assert caller.post(second.id, failed).json() == {"result": "applied"}

    one, two = delivery(running.app, first.id), delivery(running.app, second.id)
    assert (one.platform_status, one.platform_error) == ("delivered", None)
    assert (two.platform_status, two.platform_error) == ("undelivered", 30003)
    assert two.platform_status_at is not None
    # The queue's own state is the worker's: a callback does not touch it.
    assert (one.state, two.state) == (first.state, second.state)


def test_forged_signature_is_refused_audited_and_changes_nothing(
    serve_factory: ServeFactory,
) -> None:
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    caller = Caller(running.url)
    form = callback_form(sent.id, "delivered")

    forged = caller.post(sent.id, form, token="f" * 32, idempotency="token-1")
    unsigned = httpx.post(f"{running.url}/twilio/status?d={sent.id}", data=form, timeout=10)

    assert (forged.status_code, forged.json()) == (403, {"error": "forbidden"})
    assert unsigned.status_code == 403
    assert delivery(running.app, sent.id).platform_status is None
    [first, second] = refusals(running.app)
    assert first == {
        "endpoint": "/twilio/status",
        "client_ip": "127.0.0.1",
        "reason": "the signature does not match any SMS target's secret",
        "delivery": sent.id,
    }
    assert second["reason"] == "no X-Twilio-Signature"
    # The refused request's idempotency token was not claimed: the genuine one still applies.
    assert caller.post(sent.id, form, idempotency="token-1").json() == {"result": "applied"}


@pytest.mark.parametrize(
    "signed_for",
    [
        "https://attacker.example/twilio/status?d={id}",  # another host
        "https://broadcaster.example.se/other/status?d={id}",  # another path
        "https://broadcaster.example.se/twilio/status?d={other}",  # another delivery
        "http://broadcaster.example.se/twilio/status?d={id}",  # another scheme
    ],
)
def test_a_signature_made_for_another_url_is_refused(
    serve_factory: ServeFactory, signed_for: str
) -> None:
    running = serve_factory()
    target, other = sms_deliveries(running.app, 2)
    url = signed_for.format(id=target.id, other=other.id)

    answer = Caller(running.url).post(
        target.id, callback_form(target.id, "delivered"), signed_url=url
    )

    assert answer.status_code == 403
    assert delivery(running.app, target.id).platform_status is None


def test_the_url_the_request_arrived_at_is_not_what_counts(serve_factory: ServeFactory) -> None:
    """Behind a proxy: a signature for the local URL is refused, one for the public URL is not."""
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    caller = Caller(running.url)
    form = callback_form(sent.id, "sent")

    local = caller.post(sent.id, form, signed_url=f"{running.url}/twilio/status?d={sent.id}")
    public = caller.post(sent.id, form, signed_url=f"{PUBLIC}/twilio/status?d={sent.id}")

    assert (local.status_code, public.status_code) == (403, 200)


def test_a_callback_signed_with_another_targets_token_is_refused(
    serve_factory: ServeFactory,
) -> None:
    running = serve_factory()
    [borgholm] = sms_deliveries(running.app, target="sms-borgholm")
    [morbylanga] = sms_deliveries(running.app, target="sms-morbylanga")
    caller = Caller(running.url)

    wrong = caller.post(borgholm.id, callback_form(borgholm.id, "sent"), token=MORBYLANGA_TOKEN)
    right = caller.post(morbylanga.id, callback_form(morbylanga.id, "sent"), token=MORBYLANGA_TOKEN)

    assert (wrong.status_code, right.status_code) == (403, 200)
    assert delivery(running.app, borgholm.id).platform_status is None
    assert delivery(running.app, morbylanga.id).platform_status == "sent"
    [audited] = refusals(running.app)
    assert audited["reason"] == "signed with the secret of another SMS target than the delivery's"
    assert audited["delivery"] == borgholm.id


def test_an_unknown_delivery_is_checked_against_every_token(serve_factory: ServeFactory) -> None:
    running = serve_factory()
    caller = Caller(running.url)
    form = callback_form(424242, "delivered")

    for token in (BORGHOLM_TOKEN, MORBYLANGA_TOKEN):
        answer = caller.post(424242, form, token=token)
        assert (answer.status_code, answer.json()) == (200, {"result": "ignored"})
    assert caller.post(424242, form, token="0" * 32).status_code == 403


def test_a_replayed_idempotency_token_is_applied_once(serve_factory: ServeFactory) -> None:
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    caller = Caller(running.url)

    first = caller.post(sent.id, callback_form(sent.id, "sent"), idempotency="retry-1")
    replay = caller.post(sent.id, callback_form(sent.id, "sent"), idempotency="retry-1")
    # Even a later status under a token already seen is Twilio repeating itself: not applied.
    later = caller.post(sent.id, callback_form(sent.id, "delivered"), idempotency="retry-1")

    assert [a.json()["result"] for a in (first, replay, later)] == [
        "applied",
        "duplicate",
        "duplicate",
    ]
    assert delivery(running.app, sent.id).platform_status == "sent"


def test_idempotency_tokens_too_old_for_a_retry_are_forgotten(
    serve_factory: ServeFactory,
) -> None:
    running = serve_factory()
    app = running.app
    [sent] = sms_deliveries(app)
    now = app.clock()
    with app.store.write() as conn:
        claim_token(conn, "three-days-old", now - timedelta(days=3))
        claim_token(conn, "a-day-old", now - timedelta(days=1))
    caller = Caller(running.url)
    assert (
        caller.post(sent.id, callback_form(sent.id, "sent"), idempotency="new").status_code == 200
    )
    with app.store.read() as conn:
        kept = set(conn.execute(select(callback_tokens.c.token)).scalars())
    assert kept == {"a-day-old", "new"}
    # A token still within Twilio's retry window keeps protecting against the retry.
    retry = caller.post(sent.id, callback_form(sent.id, "delivered"), idempotency="a-day-old")
    assert retry.json() == {"result": "duplicate"}


def test_old_tokens_are_looked_for_once_an_hour() -> None:
    pruning = TokenPruning()
    start = datetime(2026, 12, 12, 19, 30, tzinfo=UTC)
    assert pruning.cutoff(start) == start - timedelta(hours=48)
    assert pruning.cutoff(start + timedelta(minutes=59)) is None
    later = start + timedelta(hours=1)
    assert pruning.cutoff(later) == later - timedelta(hours=48)


@pytest.mark.parametrize(
    ("statuses", "final"),
    [
        (["delivered", "sent"], "delivered"),
        (["sent", "queued", "sending"], "sent"),
        (["undelivered", "delivered"], "undelivered"),  # the first final status stays
        (["failed", "sent", "accepted"], "failed"),
        (["accepted", "queued", "sending", "sent", "delivered"], "delivered"),
    ],
)
def test_out_of_order_callbacks_never_move_a_delivery_back(
    serve_factory: ServeFactory, statuses: list[str], final: str
) -> None:
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    caller = Caller(running.url)

    for status in statuses:
        assert caller.post(sent.id, callback_form(sent.id, status)).status_code == 200

    assert delivery(running.app, sent.id).platform_status == final


def test_a_callback_about_another_message_is_ignored(serve_factory: ServeFactory) -> None:
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    [unsent] = sms_deliveries(running.app, sent=False)
    caller = Caller(running.url)

    other = caller.post(sent.id, callback_form(sent.id, "delivered", sid="SM" + "e" * 32))
    # The SID is not stored yet (the callback overtook the worker's write): it counts.
    early = caller.post(unsent.id, callback_form(unsent.id, "sent", sid=sid_for(7)))

    assert other.json() == {"result": "ignored"}
    assert delivery(running.app, sent.id).platform_status is None
    assert early.json() == {"result": "applied"}
    assert delivery(running.app, unsent.id).platform_status == "sent"


def test_hmac_sha256_signatures_with_the_shared_key_are_accepted(
    serve_factory: ServeFactory,
) -> None:
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    form = callback_form(sent.id, "delivered")
    url = f"{PUBLIC}/twilio/status?d={sent.id}"
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=KSabc,algorithm=HMAC_SHA256"}

    def post(secret: str, algorithm: str) -> httpx.Response:
        signature = RequestValidator(secret).compute_signature(url, form, algorithm)
        headers = {**settings, "X-Twilio-Signature": signature}
        return httpx.post(
            f"{running.url}/twilio/status?d={sent.id}", data=form, headers=headers, timeout=10
        )

    # With the header, the auth token is not the secret, and SHA-1 is not the algorithm.
    assert post(BORGHOLM_TOKEN, "HMAC_SHA256").status_code == 403
    assert post(SHARED_KEY, "HMAC_SHA1").status_code == 403
    assert post(SHARED_KEY, "HMAC_SHA256").json() == {"result": "applied"}
    assert delivery(running.app, sent.id).platform_status == "delivered"


def test_without_a_public_url_every_callback_is_refused(serve_factory: ServeFactory) -> None:
    running = serve_factory(public_base_url=None)
    [sent] = sms_deliveries(running.app)

    answer = Caller(running.url).post(sent.id, callback_form(sent.id, "sent"))

    assert answer.status_code == 403
    assert refusals(running.app)[0]["reason"].startswith("public_base_url is not set")


@pytest.mark.parametrize(
    ("change", "query", "message"),
    [
        ({"MessageSid": None}, None, "MessageSid is missing or not a message SID"),
        ({"MessageSid": "SM123"}, None, "MessageSid is missing or not a message SID"),
        ({"MessageStatus": None}, None, "MessageStatus must be one of"),
        ({"MessageStatus": "exploded"}, None, "MessageStatus must be one of"),
        ({"ErrorCode": "30003x"}, None, "ErrorCode must be a number"),
        ({}, "", "the query must hold one delivery id: ?d=<id>"),
        ({}, "d=abc", "the query must hold one delivery id: ?d=<id>"),
        ({}, "d=1&d=2", "the query must hold one delivery id: ?d=<id>"),
    ],
)
def test_authentic_callbacks_with_bad_fields_are_400(
    serve_factory: ServeFactory, change: dict, query: str | None, message: str
) -> None:
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    form = {
        key: value
        for key, value in {**callback_form(sent.id, "sent"), **change}.items()
        if value is not None
    }

    answer = Caller(running.url).post(sent.id, form, query=query)

    assert answer.status_code == 400
    assert answer.json()["error"].startswith(message)
    assert delivery(running.app, sent.id).platform_status is None


def test_a_forged_request_learns_nothing_about_its_fields(serve_factory: ServeFactory) -> None:
    running = serve_factory()
    answer = Caller(running.url).post("abc", {"MessageStatus": "x"}, token="f" * 32)
    assert answer.status_code == 403


def test_long_idempotency_tokens_are_400(serve_factory: ServeFactory) -> None:
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    answer = Caller(running.url).post(
        sent.id, callback_form(sent.id, "sent"), idempotency="x" * 129
    )
    assert answer.status_code == 400


def test_bodies_that_are_not_forms_are_refused(serve_factory: ServeFactory) -> None:
    running = serve_factory()
    url = f"{running.url}/twilio/status?d=1"
    as_json = httpx.post(url, json={"MessageSid": "x"}, timeout=10)
    not_utf8 = httpx.post(
        url,
        content=b"MessageSid=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert (as_json.status_code, not_utf8.status_code) == (415, 400)


def test_bodies_over_the_limit_are_413(serve_factory: ServeFactory) -> None:
    running = serve_factory()
    url = f"{running.url}/twilio/status?d=1"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    big = b"Body=" + b"x" * 70_000

    declared = httpx.post(url, content=big, headers=form, timeout=10)

    def chunks():  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = httpx.post(url, content=chunks(), headers=form, timeout=10)
    assert declared.status_code == streamed.status_code == 413
    assert declared.json() == {"error": "request body larger than 65536 bytes"}
    assert running.get("/healthz").status_code == 200  # and the server carries on


def test_unknown_routes_and_methods_answer_in_json(serve_factory: ServeFactory) -> None:
    running = serve_factory()
    missing = running.get("/nothing/here")
    wrong_method = running.get("/twilio/status")
    assert (missing.status_code, missing.json()) == (404, {"error": "not found"})
    assert (wrong_method.status_code, wrong_method.json()) == (
        405,
        {"error": "method not allowed"},
    )


def test_no_phone_number_reaches_the_log(
    serve_factory: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    running = serve_factory()
    [sent] = sms_deliveries(running.app)
    caller = Caller(running.url)
    with caplog.at_level(logging.DEBUG):
        caller.post(sent.id, callback_form(sent.id, "sent"))
        caller.post(sent.id, callback_form(sent.id, "sent"), token="f" * 32)
        caller.post(sent.id, {**callback_form(sent.id, "sent"), "MessageSid": "bad"})
    assert any("refused a Twilio status callback" in r.getMessage() for r in caplog.records)
    seen = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert RECIPIENT not in seen and RECIPIENT[1:] not in seen
    assert RECIPIENT not in str(refusals(running.app))
