"""The website's webhook mode against the sandbox's CMS, over real HTTP, through the real worker."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from broadcaster.app import App, open_app
from broadcaster.approval import approve
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.channels.cms_webhook import WebsiteWebhookChannel
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    TransientError,
)
from broadcaster.logs import log_to
from broadcaster.model import AnnouncementState, Receipt, RevisionKind
from broadcaster.queue.jobs import JobKind, enqueue_revision
from broadcaster.reports import announcement_status
from broadcaster.sandbox import Sandbox
from broadcaster.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook
from broadcaster.store.announcements import add_revision, get_announcement, set_state
from broadcaster.store.deliveries import NewDelivery, create_deliveries
from broadcaster.worker_runtime import run_worker
from broadcaster.workspace import load_workspace
from tests import factories
from tests.conftest import Cli, FakeClock
from tests.factories import make_message

T = TypeVar("T")
CMS = "cms-morbylanga"
STATIC = ("web-borgholm", "web-morbylanga")
CMS_TARGET = f"""
[[targets]]
id = "{CMS}"
channel = "website"
organisation = "morbylanga"
mode = "webhook"
url = "env:MORBYLANGA_CMS_WEBHOOK_URL"
secret = "env:MORBYLANGA_CMS_WEBHOOK_SECRET"
"""


@pytest.fixture(autouse=True)
def _unclosed_sockets_fail_their_own_test() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def make_app(
    workspace_dir: Path, sandbox: Sandbox, clock: FakeClock
) -> Iterator[Callable[..., App]]:
    """An App whose workspace has the CMS target beside the two static sites, on the sandbox."""
    opened: list[App] = []

    def make(**env_changes: str) -> App:
        config = workspace_dir / "broadcaster.toml"
        config.write_text(config.read_text(encoding="utf-8") + CMS_TARGET, encoding="utf-8")
        env = sandbox.env() | env_changes
        (workspace_dir / ".env").write_text(
            "".join(f"{name}={value}\n" for name, value in env.items()), encoding="utf-8"
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


@pytest.fixture
def token(sandbox: Sandbox) -> str:
    return str(sandbox.credentials.cms_token)


def adapter_of(app: App) -> WebsiteWebhookChannel:
    return factories.adapter_of(app, CMS, WebsiteWebhookChannel)


run = factories.run_adapter


def dispatched(app: App, *targets: str, title: str = "Dataintrång", body: str = "Text") -> int:
    draft = create_draft(
        app, "kommunikator", DraftInput(title=title, body=body, to=targets or (CMS,))
    )
    submit(app, "kommunikator", draft.id)
    approve(app, "anna.hasselbom", draft.id)
    approve(app, "jens.odevall", draft.id)
    dispatch_revision(app, "kommunikator", draft.id)
    return draft.id


def revised(app: App, announcement_id: int, kind: RevisionKind, title: str) -> int:
    """Dispatch a correction or retraction of a sent announcement, as its command will.

    The lifecycle has no command for it yet, so the store's own functions do in one
    transaction what that command will: a revision, its deliveries and their jobs.
    """
    now = app.clock()
    with app.store.write() as conn:
        current = get_announcement(conn, announcement_id)
        content = dataclasses.replace(current.revision.content, title=title, kind=kind)
        number = current.revision.number + 1
        add_revision(conn, announcement_id, number, content, "kommunikator", now)
        set_state(
            conn,
            announcement_id,
            current.state,
            AnnouncementState.DISPATCHING,
            now,
            current_revision=number,
        )
        revision = get_announcement(conn, announcement_id).revision
        rows = [NewDelivery(target=t, channel="website") for t in content.targets]
        create_deliveries(
            conn, announcement_id=announcement_id, revision_id=revision.id, rows=rows, now=now
        )
        enqueue_revision(
            conn, revision_id=revision.id, kind=JobKind.DELIVER, run_at=now, priority=2, now=now
        )
    return number


def drain(app: App) -> None:
    asyncio.run(run_worker(app, until_idle=True))


def deliveries(app: App, announcement_id: int) -> dict[tuple[str, int], dict[str, Any]]:
    found = announcement_status(app, announcement_id)["deliveries"]
    return {(d["target"], d["revision"]): d for d in found}


def cms_delivery(app: App, announcement_id: int, revision: int = 1) -> dict[str, Any]:
    return deliveries(app, announcement_id)[(CMS, revision)]


def cms_requests(sandbox: Sandbox) -> list[Any]:
    return sandbox.records.find("cms", direction="in")


def wait_of(found: dict[str, Any], clock: FakeClock) -> float:
    due = datetime.fromisoformat(found["next_attempt_at"])
    return (due - clock()).total_seconds()


# -- publishing -------------------------------------------------------------------------------


def test_delivered_once_with_a_signature_the_cms_verified(
    app: App, sandbox: Sandbox, clock: FakeClock
) -> None:
    announcement_id = dispatched(
        app, CMS, title="Dataintrång", body="Servrarna är **avstängda**. Ring 0485-470 00."
    )
    drain(app)
    found = cms_delivery(app, announcement_id)
    assert (found["state"], found["platform_id"], found["attempts"]) == ("sent", "1", 1)
    [request] = cms_requests(sandbox)
    assert (request.method, request.status, request.path) == ("POST", 201, "/cms/api/broadcaster")
    # The sandbox accepted it only with a valid signature; the bytes it got check out here too.
    secret = sandbox.env()["MORBYLANGA_CMS_WEBHOOK_SECRET"]
    headers = request.headers
    assert verify_webhook(
        secret,
        headers[TIMESTAMP_HEADER.lower()],
        headers[SIGNATURE_HEADER.lower()],
        request.body.encode(),
        now=float(headers[TIMESTAMP_HEADER.lower()]),
    )
    document = request.json
    assert headers["idempotency-key"] == f"{document['id']}.1.{CMS}"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert document == {
        "version": 1,
        "id": document["id"],
        "uri": f"urn:uuid:{document['id']}",
        "revision": 1,
        "kind": "original",
        "kind_label": "",
        "severity": "info",
        "severity_label": "Information",
        "language": "sv",
        "title": "Dataintrång",
        "text": document["text"],
        "html": document["html"],
        "link": None,
        "organisation": {
            "id": "morbylanga",
            "name": "Mörbylånga kommun",
            "phone": "0485-470 00",
            "website": "https://www.morbylanga.se",
            "kommunkod": "0840",
        },
        "target": CMS,
        # December: Stockholm is UTC+1, and the offset is written out.
        "published_at": "2026-12-12T20:30:00+01:00",
        "updated_at": "2026-12-12T20:30:00+01:00",
        "exercise": True,  # the sandbox's .env makes the workspace an exercise
        "content_hash": document["content_hash"],
    }
    assert document["text"] == "Servrarna är avstängda. Ring 0485-470 00."
    assert "<strong>avstängda</strong>" in document["html"]
    assert 'href="tel:+46485' in document["html"]
    [resource] = sandbox.cms.resources()
    assert (resource.id, resource.revision, resource.history) == ("1", 1, ["POST 1"])
    drain(app)  # nothing left to do
    assert len(cms_requests(sandbox)) == 1


def test_preview_shows_the_document_the_cms_gets(app: App, workspace_dir: Path) -> None:
    cli = Cli(cwd=workspace_dir, env={"BROADCASTER_USER": "kommunikator"})
    draft = cli("draft", "--title", "Läget", "--body", "Inga nyheter.", "--to", CMS, "--json")
    assert draft.exit_code == 0, draft.stderr
    shown = cli("preview", str(draft.json()["id"]), "--json")
    assert shown.exit_code == 0, shown.stderr
    (target,) = shown.json()["targets"]
    assert (target["target"], target["channel"], target["errors"]) == (CMS, "website", [])
    assert target["card"]["title"] == "Läget"
    assert target["card"]["text"] == "Inga nyheter."
    assert "Inga nyheter." in target["text"]


# -- corrections and retractions ----------------------------------------------------------------


def test_a_correction_puts_and_a_retraction_deletes_the_same_resource(
    app: App, sandbox: Sandbox
) -> None:
    announcement_id = dispatched(app, CMS, *STATIC, title="Vattnet är otjänligt")
    drain(app)
    assert cms_delivery(app, announcement_id)["platform_id"] == "1"

    revised(app, announcement_id, RevisionKind.CORRECTION, "Vattnet är otjänligt i Degerhamn")
    drain(app)
    corrected = cms_delivery(app, announcement_id, 2)
    assert (corrected["state"], corrected["platform_id"]) == ("sent", "1")
    put = cms_requests(sandbox)[-1]
    assert (put.method, put.path, put.status) == ("PUT", "/cms/api/broadcaster/1", 200)
    assert put.query["token"] == [sandbox.credentials.cms_token]  # the URL's token goes along
    assert put.json["kind"] == "correction" and put.json["revision"] == 2
    assert put.headers["idempotency-key"].endswith(f".2.{CMS}")
    [resource] = sandbox.cms.resources()
    assert resource.document["title"] == "Vattnet är otjänligt i Degerhamn"
    assert resource.history == ["POST 1", "PUT 2"]

    revised(app, announcement_id, RevisionKind.RETRACTION, "Återkallat")
    drain(app)
    retracted = cms_delivery(app, announcement_id, 3)
    assert (retracted["state"], retracted["platform_id"]) == ("sent", "1")
    delete = cms_requests(sandbox)[-1]
    assert (delete.method, delete.path, delete.status) == ("DELETE", "/cms/api/broadcaster/1", 204)
    assert delete.json == {
        "version": 1,
        "id": put.json["id"],
        "resource": "1",
        "kind": "retraction",
    }
    assert sandbox.cms.resources() == []
    assert [r.method for r in cms_requests(sandbox)] == ["POST", "PUT", "DELETE"]
    # The static sites got every revision as pages of their own, as before.
    states = {key: d["state"] for key, d in deliveries(app, announcement_id).items()}
    assert set(states.values()) == {"sent"} and len(states) == 9


def test_removing_what_is_gone_is_success_and_correcting_it_says_so(
    app: App, sandbox: Sandbox
) -> None:
    first = make_message(app, CMS, title="Först")
    fixed = make_message(app, CMS, title="Rättad", revision=2, uid=first.uid)

    async def flow(adapter: WebsiteWebhookChannel) -> Receipt:
        sent = await adapter.send(first, adapter.prepare(first))
        await adapter.delete(sent)
        await adapter.delete(sent)  # 404: already gone
        with pytest.raises(PermanentError, match="no longer has announcement 1"):
            await adapter.update(sent, fixed, adapter.prepare(fixed))
        return sent

    assert run(adapter_of(app), flow) == Receipt("1", {"uid": first.uid})
    assert [r.status for r in cms_requests(sandbox)] == [201, 204, 404, 404]


def test_a_receipt_without_an_id_cannot_be_corrected_by_broadcaster(app: App) -> None:
    message = make_message(app, CMS, revision=2, kind=RevisionKind.CORRECTION)
    adapter = adapter_of(app)
    blind = Receipt(f"key:{message.uid}.1.{CMS}", {"uid": message.uid})
    with pytest.raises(PermanentError, match="correct or remove it in the CMS by hand"):
        run(adapter, lambda a: a.update(blind, message, a.prepare(message)))


# -- when the CMS is down, slow or refuses ------------------------------------------------------


@pytest.mark.parametrize("fault", ["down", "503"])
def test_a_cms_that_is_down_is_retried_with_backoff_while_the_rest_is_delivered(
    app: App, sandbox: Sandbox, clock: FakeClock, fault: str
) -> None:
    if fault == "down":  # every connection closed at once, nothing carried out
        fault_id = sandbox.faults.down("cms", seconds=3600)
    else:
        fault_id = sandbox.faults.fail("cms", status=503, count=None)
    announcement_id = dispatched(app, CMS, *STATIC)
    drain(app)
    found = deliveries(app, announcement_id)
    assert {found[(t, 1)]["state"] for t in STATIC} == {"sent"}
    for attempt in (1, 2, 3):
        cms = found[(CMS, 1)]
        assert (cms["state"], cms["attempts"]) == ("retrying", attempt)
        # Full jitter under a bound that doubles: 2 s, 4 s, 8 s (retry_base_seconds = 2).
        assert 0 <= wait_of(cms, clock) <= 2**attempt
        assert "the CMS at http://127.0.0.1" in cms["last_error"]
        requests = len(cms_requests(sandbox))
        drain(app)  # not due yet: nothing is sent
        assert len(cms_requests(sandbox)) == requests
        clock.advance(wait_of(cms, clock) + 1)  # shown to the second
        drain(app)
        found = deliveries(app, announcement_id)
    assert (found[(CMS, 1)]["state"], found[(CMS, 1)]["attempts"]) == ("retrying", 4)
    assert announcement_status(app, announcement_id)["state"] == "dispatching"
    sandbox.faults.remove(fault_id)  # the CMS is back
    clock.advance(wait_of(found[(CMS, 1)], clock) + 1)  # shown to the second
    drain(app)
    cms = cms_delivery(app, announcement_id)
    assert (cms["state"], cms["attempts"], cms["platform_id"]) == ("sent", 5, "1")
    assert len(sandbox.cms.resources()) == 1
    assert announcement_status(app, announcement_id)["state"] == "sent"


def test_retry_after_is_honoured(app: App, sandbox: Sandbox, clock: FakeClock) -> None:
    sandbox.faults.fail("cms", status=429, retry_after=7)
    announcement_id = dispatched(app)
    drain(app)
    found = cms_delivery(app, announcement_id)
    assert found["state"] == "retrying"
    assert "asked to slow down (429)" in found["last_error"]
    assert found["next_attempt_at"] == (clock() + timedelta(seconds=7)).isoformat(
        timespec="seconds"
    )
    clock.advance(6)
    drain(app)
    assert (cms_delivery(app, announcement_id)["state"], sandbox.cms.resources()) == (
        "retrying",
        [],
    )
    clock.advance(1)
    drain(app)
    assert cms_delivery(app, announcement_id)["state"] == "sent"
    assert len(sandbox.cms.resources()) == 1


def test_a_refused_signature_is_dead_with_the_reason(
    make_app: Callable[..., App], sandbox: Sandbox
) -> None:
    app = make_app(MORBYLANGA_CMS_WEBHOOK_SECRET="not-what-the-cms-was-given")
    announcement_id = dispatched(app, CMS, *STATIC)
    drain(app)
    found = cms_delivery(app, announcement_id)
    assert (found["state"], found["attempts"]) == ("dead", 1)
    error = found["last_error"]
    assert error.startswith("AuthError: target cms-morbylanga: the CMS at http://127.0.0.1:")
    assert "refused the request (401: invalid or missing signature" in error
    assert "check that the variable `secret` names holds the secret the CMS was given" in error
    assert "not-what-the-cms-was-given" not in error
    assert {deliveries(app, announcement_id)[(t, 1)]["state"] for t in STATIC} == {"sent"}
    assert announcement_status(app, announcement_id)["state"] == "partially_failed"


def test_a_lost_answer_is_sent_again_and_published_once(
    app: App, sandbox: Sandbox, clock: FakeClock
) -> None:
    # The CMS publishes, then the connection drops before its answer.
    sandbox.faults.drop("cms")
    announcement_id = dispatched(app)
    drain(app)
    found = cms_delivery(app, announcement_id)
    assert found["state"] == "retrying"
    assert "no answer from the CMS" in found["last_error"]
    assert "same Idempotency-Key" in found["last_error"]
    clock.advance(wait_of(found, clock) + 1)  # shown to the second
    drain(app)
    found = cms_delivery(app, announcement_id)
    assert (found["state"], found["platform_id"]) == ("sent", "1")
    first, again = cms_requests(sandbox)
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"]
    assert first.body == again.body
    assert again.response == {"id": "1"}
    assert len(sandbox.cms.resources()) == 1
    assert [d.replayed for d in sandbox.cms.deliveries()] == [False, True]


def test_a_slow_cms_is_a_timeout_that_is_retried(
    app: App, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WebsiteWebhookChannel, "request_timeout_seconds", 0.3)
    sandbox.faults.hang("cms", seconds=2, effect=True)
    message = make_message(app, CMS)
    with pytest.raises(TransientError, match=r"no answer from the CMS at .* \(ReadTimeout\)"):
        run(adapter_of(app), lambda a: a.send(message, a.prepare(message)))
    receipt = run(adapter_of(app), lambda a: a.send(message, a.prepare(message)))
    assert receipt.platform_id == "1"
    assert len(sandbox.cms.resources()) == 1


def test_a_cms_out_of_reach_sent_nothing(app: App) -> None:
    target = app.config.target(CMS)
    assert target is not None
    unreachable = target.model_copy(
        update={"url": type(target.url)("http://127.0.0.1:9/cms/api/broadcaster?token=abcdefgh")}
    )
    message = make_message(app, CMS)
    adapter = WebsiteWebhookChannel(unreachable, app.channel_context())
    with pytest.raises(TransientError, match="could not connect to the CMS at") as caught:
        run(adapter, lambda a: a.send(message, a.prepare(message)))
    assert "nothing was sent" in caught.value.message
    assert "abcdefgh" not in caught.value.message


# -- every answer, read from the table ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (400, PermanentError, "refused the announcement (400: the title is empty)"),
        (401, AuthError, "refused the request (401: the title is empty)"),
        (403, AuthError, "check that the variable `secret` names holds"),
        (404, PermanentError, "has no such address (404: the title is empty): check `url`"),
        (405, PermanentError, "does not take POST there (405"),
        (408, TransientError, "timed out reading the request (408)"),
        (409, TransientError, "still working on an earlier attempt (409"),
        (410, PermanentError, "no longer has it (410"),
        (413, PermanentError, "too large (413"),
        (422, PermanentError, "refused the announcement (422: the title is empty)"),
        (429, RateLimited, "asked to slow down (429)"),
        (500, TransientError, "failed (500: the title is empty)"),
        (502, TransientError, "failed (502"),
        (503, TransientError, "failed (503"),
        (301, PermanentError, "answered a redirect (301): write the address it redirects to"),
        (418, PermanentError, "refused the request (418: the title is empty)"),
    ],
)
def test_each_answer_of_the_cms_is_classified(
    app: App, status: int, error: type[Exception], words: str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, json={"error": "the title is empty"}, headers={"Retry-After": "3"}
        )

    context = dataclasses.replace(app.channel_context(), http_transport=httpx.MockTransport(answer))
    target = app.config.target(CMS)
    assert target is not None
    message = make_message(app, CMS)
    with pytest.raises(error) as caught:
        run(
            WebsiteWebhookChannel(target, context),
            lambda a: a.send(message, a.prepare(message)),
        )
    assert type(caught.value) is error
    assert words in str(caught.value)
    if isinstance(caught.value, TransientError):
        assert caught.value.retry_after == 3.0


def test_a_409_to_a_put_is_another_announcement_not_a_retry(app: App) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"error": "resource 1 holds another announcement"})

    context = dataclasses.replace(app.channel_context(), http_transport=httpx.MockTransport(answer))
    target = app.config.target(CMS)
    assert target is not None
    message = make_message(app, CMS, revision=2, kind=RevisionKind.CORRECTION)
    with pytest.raises(PermanentError, match="holds another announcement under that id"):
        run(
            WebsiteWebhookChannel(target, context),
            lambda a: a.update(Receipt("1", {"uid": message.uid}), message, a.prepare(message)),
        )


@pytest.mark.parametrize(
    ("answer", "resource"),
    [
        (httpx.Response(201, json={"id": 4711}), "4711"),
        (httpx.Response(201, headers={"Location": "/api/items/n%2F8"}), "n/8"),
        (httpx.Response(202, json={"id": "a-1"}, headers={"Location": "/x/9"}), "a-1"),
    ],
)
def test_the_receipt_is_the_cms_id(app: App, answer: httpx.Response, resource: str) -> None:
    context = dataclasses.replace(
        app.channel_context(), http_transport=httpx.MockTransport(lambda request: answer)
    )
    target = app.config.target(CMS)
    assert target is not None
    message = make_message(app, CMS)
    adapter = WebsiteWebhookChannel(target, context)
    receipt = run(adapter, lambda a: a.send(message, a.prepare(message)))
    assert receipt == Receipt(resource, {"uid": message.uid})


def test_a_cms_that_names_no_id_still_published_it(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    context = dataclasses.replace(
        app.channel_context(),
        http_transport=httpx.MockTransport(lambda request: httpx.Response(204)),
    )
    target = app.config.target(CMS)
    assert target is not None
    message = make_message(app, CMS)
    with caplog.at_level(logging.WARNING, logger="broadcaster"):
        receipt = run(
            WebsiteWebhookChannel(target, context),
            lambda a: a.send(message, a.prepare(message)),
        )
    assert receipt.platform_id == f"key:{message.idempotency_key}"
    assert "without naming an id" in caplog.text


# -- the token in the URL stays secret ----------------------------------------------------------


def test_the_token_never_appears_in_status_errors_or_logs(
    make_app: Callable[..., App],
    workspace_dir: Path,
    sandbox: Sandbox,
    clock: FakeClock,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    url = sandbox.env()["MORBYLANGA_CMS_WEBHOOK_URL"]
    secret = sandbox.env()["MORBYLANGA_CMS_WEBHOOK_SECRET"]
    announcement_id = dispatched(app, CMS)
    cli = Cli(cwd=workspace_dir, env={"BROADCASTER_USER": "kommunikator"})
    logs = io.StringIO()
    # A CMS that quotes the request back, token and all, in its failures and refusals; and one
    # answer lost on the way.
    faults = [
        lambda: sandbox.faults.fail("cms", status=503, message=f"no backend for {url}"),
        lambda: sandbox.faults.drop("cms"),
        lambda: sandbox.faults.fail("cms", status=400, message=f"bad: {url} (token={token})"),
    ]
    with caplog.at_level(logging.DEBUG, logger="broadcaster"), log_to(logs, "Europe/Stockholm"):
        for inject in faults:
            inject()
            drain(app)
            clock.advance(60)
    found = cms_delivery(app, announcement_id)
    assert found["state"] == "dead"
    assert "(400: bad: *** (***))" in found["last_error"]
    assert [r.status for r in cms_requests(sandbox)] == [503, None, 400]
    said = [
        json.dumps(announcement_status(app, announcement_id)),
        cli("status", str(announcement_id), "--json").stdout,
        cli("status", str(announcement_id), "--wide").stdout,
        cli("deadletters", "--json").stdout,
        cli("audit", str(announcement_id), "--json").stdout,
        logs.getvalue(),
        caplog.text,
    ]
    assert "http://127.0.0.1" in logs.getvalue()  # the host is named ...
    for text in said:
        assert token not in text and secret not in text  # ... its token and secret never
        assert "?token" not in text


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_worker_command_never_prints_the_token(
    make_app: Callable[..., App], workspace_dir: Path, sandbox: Sandbox, token: str, log_format: str
) -> None:
    make_app()
    url = sandbox.env()["MORBYLANGA_CMS_WEBHOOK_URL"]
    sandbox.faults.fail("cms", status=422, message=f"{url} refused")

    def cli(*args: str, who: str = "kommunikator") -> Any:
        result = Cli(cwd=workspace_dir, env={"BROADCASTER_USER": who})(*args)
        assert result.exit_code == 0, result.stdout + result.stderr
        return result

    draft = cli("draft", "--title", "Läget", "--body", "Text", "--to", CMS, "--json").json()
    cli("submit", str(draft["id"]))
    cli("approve", str(draft["id"]), who="anna.hasselbom")
    cli("approve", str(draft["id"]), who="jens.odevall")
    cli("send", str(draft["id"]))
    flags = ["--json-logs"] if log_format == "json" else []
    worker = cli("worker", "--until-idle", *flags)
    output = worker.stdout + worker.stderr
    assert "422: *** refused" in output  # the worker said what happened ...
    assert token not in output and "?token" not in output  # ... and not the token
