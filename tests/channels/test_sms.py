"""The SMS channel against the sandbox's Twilio, with the real twilio SDK over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from broadcaster.app import App, open_app
from broadcaster.approval import approve
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.channels.sms import SmsChannel
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    RateScope,
    RecipientOptedOut,
    RenderError,
    TransientError,
    UnknownOutcome,
)
from broadcaster.model import Receipt, RevisionKind
from broadcaster.recipients import import_list, opt_out
from broadcaster.rendering.message import Message
from broadcaster.reports import announcement_status
from broadcaster.sandbox import Sandbox
from broadcaster.store.deliveries import deliveries_for
from broadcaster.workspace import load_workspace
from tests import factories
from tests.conftest import Cli, FakeClock
from tests.factories import make_message

T = TypeVar("T")
TARGET = "sms-borgholm"
LIST = "borgholm-residents"
NUMBER = "+46701740605"
SERVICE = "MG" + "0123456789abcdef" * 2
PUBLIC = "https://broadcaster.example.se"
# Unmasked numbers: E.164 with or without spaces, or national.
UNMASKED = re.compile(r"\+?\d[\d -]{6,}\d")


def sms_toml(**settings: Any) -> str:
    """The SMS target block; ``sender`` or ``messaging_service_sid`` comes from settings."""
    if "messaging_service_sid" not in settings:
        settings.setdefault("sender", "Borgholm")
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    return (
        "\n[[targets]]\n"
        f'id = "{TARGET}"\n'
        'channel = "sms"\n'
        'organisation = "borgholm"\n'
        f'list = "{LIST}"\n'
        'account_sid = "env:TWILIO_ACCOUNT_SID"\n'
        'auth_token = "env:TWILIO_AUTH_TOKEN"\n' + extra
    )


@pytest.fixture(autouse=True)
def _unclosed_sockets_fail_their_own_test() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def make_app(
    workspace_dir: Path, sandbox: Sandbox, clock: FakeClock
) -> Iterator[Callable[..., App]]:
    """An App whose workspace has the SMS target, pointed at the sandbox by its .env."""
    opened: list[App] = []

    def make(public: str | None = None, env: dict[str, str] | None = None, **settings: Any) -> App:
        config = workspace_dir / "broadcaster.toml"
        text = config.read_text(encoding="utf-8")
        if public is not None:
            text = text.replace(
                '# public_base_url = "https://broadcaster.example.se"',
                f'public_base_url = "{public}"',
            )
        config.write_text(text + sms_toml(**settings), encoding="utf-8")
        values = {**sandbox.env(), **(env or {})}
        (workspace_dir / ".env").write_text(
            "".join(f"{name}={value}\n" for name, value in values.items()), encoding="utf-8"
        )
        app = open_app(load_workspace(config, {}), clock=clock)
        opened.append(app)
        return app

    yield make
    for app in opened:
        app.close()


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return make_app()


def adapter_of(app: App) -> SmsChannel:
    return factories.adapter_of(app, TARGET, SmsChannel)


run = factories.run_adapter


def to(app: App, number: str = NUMBER, delivery_id: int | None = 42, **content: Any) -> Message:
    """A message for the SMS target, addressed as the worker addresses one delivery."""
    # Dispatched now: the sandbox's Twilio stamps its messages with the real time.
    message = make_message(app, TARGET, at=datetime.now(UTC), **content)
    return dataclasses.replace(message, recipient=number, delivery_id=delivery_id)


def send(app: App, message: Message) -> Receipt:
    adapter = adapter_of(app)
    rendered = adapter.prepare(message)
    return run(adapter, lambda a: a.send(message, rendered))


def failure(app: App, message: Message) -> BaseException:
    with pytest.raises(Exception) as caught:
        send(app, message)
    return caught.value


def creates(sandbox: Sandbox) -> list[Any]:
    """The create requests Twilio received (faulted ones included)."""
    return [r for r in sandbox.records.find("twilio", direction="in", method="POST")]


def write_list(app: App, path: Path, numbers: list[str], name: str = LIST) -> None:
    path.write_text("number\n" + "".join(f"{n}\n" for n in numbers), encoding="utf-8")
    import_list(app, "admin", name, path, organisation="borgholm")


# -- sending ------------------------------------------------------------------------------------


def test_a_text_from_the_sender_id_with_validity_and_status_callback(
    make_app: Callable[..., App], sandbox: Sandbox
) -> None:
    app = make_app(public=PUBLIC)
    message = to(app, body="Kokvattnet gäller \u2013 till på \u201dfredag\u201d\u2026")
    receipt = send(app, message)

    (sent,) = sandbox.twilio.messages()
    assert receipt == Receipt(sent.sid, {"status": "queued"})
    (request,) = creates(sandbox)
    assert request.field("To") == NUMBER
    assert request.field("From") == "Borgholm"
    assert request.field("MessagingServiceSid") is None
    assert request.field("ValidityPeriod") == "3600"
    assert request.field("StatusCallback") == f"{PUBLIC}/twilio/status?d=42"
    # Typography replaced so the text stays GSM-7; å ä ö stay.
    assert sent.body.endswith('Kokvattnet gäller - till på "fredag"...')
    # The sandbox's .env makes the workspace an exercise: the text says so first.
    assert sent.body.startswith(
        "ÖVNING - inte ett verkligt meddelande.\nBorgholms kommun: Vattnet är tillbaka\n"
    )
    # The receipt is stored with the delivery for as long as it is: no number in it.
    assert NUMBER not in json.dumps(dict(receipt.data))


def test_one_adapter_sends_each_text_exactly_as_written_to_each_number(
    app: App, sandbox: Sandbox
) -> None:
    """The adapter encodes the form itself and remembers a long text's encoding (it is the
    same for thousands of numbers): what Twilio reads must still be each message's own text,
    characters that mean something in a form included, and never another text's."""
    adapter = adapter_of(app)
    texts = [
        "Vatten & avlopp: 50% + 50% = 100%; kokvatten?ja=nej #2\nRing 0485-880 00.",
        "Информация на русском 🚰 — läs mer på borgholm.se/?a=1&b=2",
        "Kort",
    ]
    numbers = [f"+4670174060{n}" for n in range(5, 10)]
    plan = [(text, number) for text in texts for number in numbers[:2]] + [(texts[0], numbers[4])]

    async def send_all(channel: SmsChannel) -> list[Receipt]:
        receipts = []
        for n, (text, number) in enumerate(plan):
            message = to(app, number, delivery_id=n + 1, body=text)
            receipts.append(await channel.send(message, channel.prepare(message)))
        return receipts

    receipts = run(adapter, send_all)

    requests = creates(sandbox)
    assert len(requests) == len(plan) == len(receipts)
    for (text, number), request in zip(plan, requests, strict=True):
        assert request.field("To") == number
        assert request.field("Body").endswith(text)
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert [m.to for m in sandbox.twilio.messages()] == [number for _, number in plan]


def test_a_text_through_the_messaging_service_without_a_callback_url(
    make_app: Callable[..., App], sandbox: Sandbox
) -> None:
    app = make_app(messaging_service_sid=SERVICE, validity_period=600)
    receipt = send(app, to(app))

    (request,) = creates(sandbox)
    assert request.field("MessagingServiceSid") == SERVICE
    assert request.field("From") is None
    assert request.field("ValidityPeriod") == "600"
    assert request.field("StatusCallback") is None  # no public_base_url: nothing calls back
    assert receipt.data == {"status": "accepted"}


def test_validity_period_stays_within_twilios_range(make_app: Callable[..., App]) -> None:
    from broadcaster.errors import ConfigError

    for wrong in (0, 36001):
        with pytest.raises(ConfigError, match="validity_period"):
            make_app(validity_period=wrong)


def test_every_request_has_a_deadline_the_sdk_would_not_give_it(
    make_app: Callable[..., App], sandbox: Sandbox
) -> None:
    app = make_app(timeout_seconds=0.5)
    sandbox.faults.hang("twilio", seconds=30.0)
    started = time.monotonic()
    error = failure(app, to(app))
    assert isinstance(error, UnknownOutcome)
    assert time.monotonic() - started < 5.0
    assert "looked up before any resend" in str(error)
    assert sandbox.twilio.messages() == []


# -- did it arrive? -----------------------------------------------------------------------------


def test_a_lost_answer_is_found_by_lookup_and_never_sent_twice(
    make_app: Callable[..., App], sandbox: Sandbox
) -> None:
    app = make_app(timeout_seconds=0.5)
    message = to(app)
    sandbox.faults.latency("twilio", 1.5, count=1)  # longer than the timeout; then carried out
    assert isinstance(failure(app, message), UnknownOutcome)
    sandbox.records.wait_for(lambda r: r.method == "POST" and r.status == 201, timeout=5)

    found = run(adapter_of(app), lambda a: a.verify(message))
    (sent,) = sandbox.twilio.messages()
    assert found == Receipt(sent.sid, {"status": sent.status})
    assert len(creates(sandbox)) == 1


def test_a_lookup_ignores_other_texts_and_older_ones(
    make_app: Callable[..., App], sandbox: Sandbox, clock: FakeClock
) -> None:
    app = make_app()
    message = to(app, title="Läget")
    send(app, to(app, title="Något annat"))  # another text to the same number
    send(app, to(app, "+46701740606", title="Läget"))  # the same text to another number
    assert run(adapter_of(app), lambda a: a.verify(message)) is None

    send(app, message)
    later = dataclasses.replace(message, updated_at=message.updated_at + timedelta(hours=1))
    assert run(adapter_of(app), lambda a: a.verify(later)) is None  # created before dispatch
    found = run(adapter_of(app), lambda a: a.verify(message))
    assert found is not None
    assert found.platform_id == sandbox.twilio.messages(NUMBER)[-1].sid


def test_a_failed_lookup_keeps_the_delivery_unknown_by_being_retryable(
    app: App, sandbox: Sandbox
) -> None:
    sandbox.faults.fail("twilio", status=503)
    with pytest.raises(TransientError, match="could not look the message up") as caught:
        run(adapter_of(app), lambda a: a.verify(to(app)))
    assert caught.value.retryable


# -- what Twilio's refusals become --------------------------------------------------------------


def test_an_invalid_number_is_permanent_and_masked(app: App, sandbox: Sandbox) -> None:
    error = failure(app, to(app, "+4670174"))
    assert type(error) is PermanentError
    assert "21211" in str(error)
    assert "+4670174" not in str(error)
    assert UNMASKED.search(str(error)) is None, str(error)


def test_a_number_that_is_not_a_mobile_is_permanent(app: App) -> None:
    error = failure(app, to(app, "+15005550009"))
    assert type(error) is PermanentError
    assert "not a mobile number (21614)" in str(error)


def test_a_recipient_who_replied_stop_is_opted_out(app: App, sandbox: Sandbox) -> None:
    sandbox.twilio.opt_out(NUMBER)
    error = failure(app, to(app))
    assert isinstance(error, RecipientOptedOut)
    assert "21610" in str(error)
    assert UNMASKED.search(str(error)) is None


def test_a_refused_auth_token_says_what_to_renew(
    make_app: Callable[..., App], sandbox: Sandbox
) -> None:
    app = make_app(env={"TWILIO_AUTH_TOKEN": "0" * 32})
    error = failure(app, to(app))
    assert isinstance(error, AuthError)
    assert "renew the auth token" in str(error)
    assert "0" * 32 not in str(error)
    (problem,) = run(adapter_of(app), lambda a: a.check_online())
    assert "renew the auth token" in problem


def test_check_online_passes_with_working_credentials(app: App) -> None:
    assert run(adapter_of(app), lambda a: a.check_online()) == []


@pytest.mark.parametrize(
    ("fault", "expected", "retry_after", "scope"),
    [
        # Twilio's 429 carries 20429: the account's requests, which every SMS target shares.
        ({"status": 429, "retry_after": 7}, RateLimited, 7.0, RateScope.CHANNEL),
        ({"status": 429, "code": 20429}, RateLimited, 5.0, RateScope.CHANNEL),
        ({"status": 500}, TransientError, None, None),  # the queue's backoff decides
        ({"status": 503, "retry_after": 2}, TransientError, 2.0, None),
        ({"status": 400, "code": 21611}, TransientError, 30.0, None),
    ],
)
def test_throttling_and_twilio_failures_are_retried(
    app: App,
    sandbox: Sandbox,
    fault: dict[str, Any],
    expected: type[Exception],
    retry_after: float | None,
    scope: RateScope | None,
) -> None:
    sandbox.faults.fail("twilio", **fault)
    error = failure(app, to(app))
    assert type(error) is expected
    assert isinstance(error, TransientError)
    assert error.retry_after == retry_after
    if scope is not None:
        assert isinstance(error, RateLimited)
        assert error.scope == scope
    assert sandbox.twilio.messages() == []


def test_a_gateway_error_may_have_passed_the_request_on(app: App, sandbox: Sandbox) -> None:
    sandbox.faults.fail("twilio", status=502)
    assert isinstance(failure(app, to(app)), UnknownOutcome)


def test_a_dropped_answer_is_unknown(app: App, sandbox: Sandbox) -> None:
    sandbox.faults.drop("twilio")
    assert isinstance(failure(app, to(app)), UnknownOutcome)
    assert len(sandbox.twilio.messages()) == 1  # it was carried out: the lookup will find it


def test_no_connection_means_nothing_was_sent(make_app: Callable[..., App]) -> None:
    # Not an exercise (which refuses any address outside the sandbox): port 9 refuses.
    unreachable = "http://127.0.0.1:9/twilio"
    app = make_app(
        env={
            "BROADCASTER_TWILIO_API_URL": unreachable,
            "BROADCASTER_SANDBOX_URL": "",
            "BROADCASTER_EXERCISE": "",
        }
    )
    error = failure(app, to(app))
    assert type(error) is TransientError
    assert "nothing was sent" in str(error)


# -- segments -----------------------------------------------------------------------------------


def test_a_text_longer_than_max_segments_is_refused_at_send(
    make_app: Callable[..., App], sandbox: Sandbox
) -> None:
    app = make_app(max_segments=1)
    message = to(app, body="Kokvattnet gäller. " * 12)
    rendered = adapter_of(app).prepare(message)
    (problem,) = rendered.problems
    assert "needs 2 segments" in problem
    assert "max_segments = 1 for sms-borgholm" in problem
    with pytest.raises(PermanentError, match="max_segments"):
        run(adapter_of(app), lambda a: a.send(message, rendered))
    assert creates(sandbox) == []


def test_a_correction_is_a_new_text_headed_rattelse(app: App, sandbox: Sandbox) -> None:
    adapter = adapter_of(app)
    assert (adapter.can_update, adapter.can_delete, adapter.can_verify) == (False, False, True)
    send(app, to(app, kind=RevisionKind.CORRECTION, revision=2))
    (sent,) = sandbox.twilio.messages()
    assert "\nBorgholms kommun: Rättelse: Vattnet är tillbaka\n" in sent.body


# -- through the queue --------------------------------------------------------------------------


def dispatched(app: App, title: str = "Läget i kommunen", body: str = "Text") -> int:
    draft = create_draft(app, "kommunikator", DraftInput(title=title, body=body, to=(TARGET,)))
    submit(app, "kommunikator", draft.id)
    approve(app, "anna.hasselbom", draft.id)
    approve(app, "jens.odevall", draft.id)
    dispatch_revision(app, "kommunikator", draft.id)
    return draft.id


def test_a_send_is_refused_when_the_list_does_not_exist(app: App) -> None:
    draft = create_draft(app, "kommunikator", DraftInput(title="Läget", body="Text", to=(TARGET,)))
    with pytest.raises(RenderError, match=f"there is no recipient list '{LIST}'"):
        submit(app, "kommunikator", draft.id)


# -- preview ------------------------------------------------------------------------------------


def test_preview_json_counts_segments_recipients_and_cost(
    make_app: Callable[..., App], cli: Cli, tmp_path: Path
) -> None:
    app = make_app(price_per_segment=0.45)
    write_list(app, tmp_path / "list.csv", [NUMBER, "+46701740606", "+46701740607"])
    opt_out(app, "admin", "+46701740607")
    draft = create_draft(
        app, "kommunikator", DraftInput(title="Läget", body="Vatten ” " * 20, to=(TARGET,))
    )
    result = cli("preview", str(draft.id), "--json")
    assert result.exit_code == 0, result.stdout
    (target,) = result.json()["targets"]
    sms = target["sms"]
    assert {k: sms[k] for k in ("encoding", "segments", "recipients", "total_segments")} == {
        "encoding": "GSM-7",
        "segments": 2,
        "recipients": 2,
        "total_segments": 4,
    }
    assert sms["cost"] == pytest.approx(1.80)
    assert sms["replaced"] == ["”"]
    assert target["errors"] == []
    assert NUMBER not in result.stdout


def test_preview_shows_the_figures_to_people_and_refuses_too_many_segments(
    make_app: Callable[..., App], cli: Cli, tmp_path: Path
) -> None:
    app = make_app(max_segments=1)
    write_list(app, tmp_path / "list.csv", [NUMBER, "+46701740606"])
    draft = create_draft(
        app, "kommunikator", DraftInput(title="Läget", body="Вода " * 20, to=(TARGET,))
    )
    result = cli("preview", str(draft.id))
    assert result.exit_code == 2
    assert "SMS: UCS-2" in result.stdout
    assert "Recipients: 2 on list borgholm-residents" in result.stdout
    assert "Total: " in result.stdout
    assert "max_segments = 1" in result.stdout
    summary = [line for line in result.stdout.splitlines() if line.startswith(("SMS:", "Recip"))]
    assert len(summary) == 2
    assert all(len(line) <= 80 for line in summary)
    document = cli("preview", str(draft.id), "--json")
    assert document.exit_code == 2
    (target,) = document.json()["targets"]
    assert target["sms"]["encoding"] == "UCS-2"
    assert "cost" not in target["sms"]
    assert any("max_segments" in error for error in target["errors"])


def test_preview_of_an_unknown_list_is_a_clear_problem(app: App, cli: Cli) -> None:
    draft = create_draft(app, "kommunikator", DraftInput(title="Läget", body="Text", to=(TARGET,)))
    document = cli("preview", str(draft.id), "--json")
    assert document.exit_code == 2
    (target,) = document.json()["targets"]
    assert target["sms"]["recipients"] is None
    (error,) = target["errors"]
    assert "there is no recipient list 'borgholm-residents'" in error
    assert "lists import" in error


def test_the_worker_sends_one_text_per_recipient_and_keeps_each_sid(
    app: App, sandbox: Sandbox, tmp_path: Path
) -> None:
    from broadcaster.worker_runtime import run_worker

    numbers = [NUMBER, "+46701740606", "+46701740608"]
    write_list(app, tmp_path / "list.csv", numbers)
    announcement_id = dispatched(app)
    asyncio.run(run_worker(app, until_idle=True))

    assert announcement_status(app, announcement_id)["state"] == "sent"
    by_number = {m.to: m.sid for m in sandbox.twilio.messages()}
    assert sorted(by_number) == sorted(numbers)
    with app.store.read() as conn:
        rows = deliveries_for(conn, announcement_id)
    assert {d.recipient: d.platform_id for d in rows} == by_number


def test_the_scaffolds_sms_blocks_load_as_documented(workspace_dir: Path) -> None:
    from broadcaster.config import SmsTarget
    from broadcaster.scaffold.accounts import switch_on_account_blocks

    config = workspace_dir / "broadcaster.toml"
    switch_on_account_blocks(config, lambda channel, mode: channel == "sms")
    secrets = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "x" * 32}
    targets = load_workspace(config, secrets).config.targets
    sms = [t for t in targets if isinstance(t, SmsTarget)]
    assert [(t.validity_period, t.max_segments, t.price_per_segment) for t in sms] == [
        (3600, 3, None),
        (3600, 3, None),
    ]
    assert "# price_per_segment = 0.45" in config.read_text(encoding="utf-8")
