"""End to end: the sandbox's Twilio emulator calls `serve` back, signed as Twilio signs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from broadcaster.model import DeliveryState
from broadcaster.store.deliveries import DeliveryUpdate, record_updates
from tests.server.conftest import SECRETS, ServeFactory, delivery, sms_deliveries

DELIVERED = "+46701234567"
UNREACHABLE = "+46701230003"  # the emulator's rule: numbers ending 0003 are undelivered, 30003


@pytest.fixture
def twilio(sandbox: Any) -> Iterator[Client]:
    """twilio's own client, pointed at the sandbox as the SMS adapter points it."""
    env = sandbox.env()
    http = TwilioHttpClient(timeout=10)
    client = Client(env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"], http_client=http)
    client.api.base_url = env["BROADCASTER_TWILIO_API_URL"]
    yield client
    http.session.close()


def test_the_emulators_signed_callbacks_are_applied(
    serve_factory: ServeFactory, sandbox: Any, twilio: Client
) -> None:
    env = sandbox.env()
    accounts = {
        "TWILIO_ACCOUNT_SID": env["TWILIO_ACCOUNT_SID"],
        "TWILIO_AUTH_TOKEN": env["TWILIO_AUTH_TOKEN"],
    }
    # No proxy: Twilio (the emulator) is told the server's own URL.
    running = serve_factory(public_base_url="self", secrets={**SECRETS, **accounts})
    deliveries = sms_deliveries(running.app, 2, sent=False)

    for sent, number in zip(deliveries, (DELIVERED, UNREACHABLE), strict=True):
        message = twilio.messages.create(
            to=number,
            from_="Borgholm",
            body="Koka vattnet.",
            status_callback=f"{running.url}/twilio/status?d={sent.id}",
        )
        with running.app.store.write() as conn:  # what the worker stores after the call
            update = DeliveryUpdate(
                delivery_id=sent.id,
                expected=(DeliveryState.PENDING,),
                attempt=None,
                state=DeliveryState.SENT,
                platform_id=message.sid,
            )
            record_updates(conn, [update], running.app.clock())

    deadline = time.monotonic() + 15
    while any(delivery(running.app, d.id).platform_status in (None, "sent") for d in deliveries):
        assert time.monotonic() < deadline, "the callbacks did not all arrive"
        time.sleep(0.05)
    reached, unreached = (delivery(running.app, d.id) for d in deliveries)
    assert (reached.platform_status, reached.platform_error) == ("delivered", None)
    assert (unreached.platform_status, unreached.platform_error) == ("undelivered", 30003)
    # sent and the final status, for each message, all answered
    callbacks = sandbox.records.wait_for(
        lambda r: r.platform == "twilio" and r.direction == "out" and r.status is not None,
        count=4,
    )
    assert len(sandbox.records.find("twilio", direction="out")) == 4
    assert {record.status for record in callbacks} == {200}
