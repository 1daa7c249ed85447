"""The Facebook adapter: facebook-sdk over real HTTP against the sandbox's Graph emulator."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broadcaster.app import App, open_app
from broadcaster.approval import approve
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.channels.base import Receipt
from broadcaster.channels.facebook import FacebookChannel
from broadcaster.channels.facebook_usage import UNESTIMATED_PAUSE_S, Budget, read_budgets
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    RateScope,
    UnknownOutcome,
)
from broadcaster.rendering.message import Message
from broadcaster.reports import announcement_status
from broadcaster.sandbox import BORGHOLM_PAGE_ID, MORBYLANGA_PAGE_ID
from broadcaster.sandbox.credentials import FACEBOOK_APP_ID
from broadcaster.worker_runtime import run_worker
from broadcaster.workspace import load_workspace
from tests.conftest import Cli, FakeClock
from tests.factories import HOSTILE_BODY, make_message

BORGHOLM, MORBYLANGA = "fb-borgholm", "fb-morbylanga"
FACEBOOK_TARGETS = f"""
[[targets]]
id = "{BORGHOLM}"
channel = "facebook"
organisation = "borgholm"
page_id = "{BORGHOLM_PAGE_ID}"
access_token = "env:FB_BORGHOLM_PAGE_TOKEN"
app_secret = "env:FB_APP_SECRET"

[[targets]]
id = "{MORBYLANGA}"
channel = "facebook"
organisation = "morbylanga"
page_id = "{MORBYLANGA_PAGE_ID}"
access_token = "env:FB_MORBYLANGA_PAGE_TOKEN"
app_secret = "env:FB_APP_SECRET"
"""


@pytest.fixture
def fb_workspace(workspace_dir: Path, sandbox: Any) -> Path:
    """An `init` workspace with both Facebook pages and the sandbox's .env."""
    config = workspace_dir / "broadcaster.toml"
    config.write_text(config.read_text(encoding="utf-8") + FACEBOOK_TARGETS, encoding="utf-8")
    env = "".join(f"{key}={value}\n" for key, value in sandbox.env().items())
    (workspace_dir / ".env").write_text(env, encoding="utf-8")
    return config


@pytest.fixture
def clock() -> FakeClock:
    # The sandbox stamps posts with the real time, and verify reads posts by time: start now.
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def fb_app(fb_workspace: Path, clock: FakeClock) -> Iterator[App]:
    application = open_app(load_workspace(fb_workspace, {}), clock=clock)
    yield application
    application.close()


@pytest.fixture
def adapters(fb_app: App) -> Iterator[dict[str, FacebookChannel]]:
    """One adapter per page, as the worker keeps them; closed afterwards."""
    built = {}
    for target_id in (BORGHOLM, MORBYLANGA):
        target = fb_app.config.target(target_id)
        assert target is not None
        channel = fb_app.registry.create(target, fb_app.channel_context())
        assert isinstance(channel, FacebookChannel)
        built[target_id] = channel
    yield built
    for channel in built.values():
        asyncio.run(channel.aclose())


def message(app: App, target_id: str = BORGHOLM, **fields: Any) -> Message:
    fields.setdefault("title", "Servrarna är nedstängda")
    fields.setdefault("body", "Kommunen är utsatt för ett **dataintrång**. Ring 0485-880 00.")
    link = fields.pop("link", "https://www.borgholm.se/kris")
    built = make_message(app, target_id, **fields)
    return dataclasses.replace(built, content=dataclasses.replace(built.content, link=link))


def send(adapter: FacebookChannel, msg: Message) -> Receipt:
    rendered = adapter.prepare(msg)
    assert rendered.problems == ()
    return asyncio.run(adapter.send(msg, rendered))


def posts(sandbox: Any, page_id: str = BORGHOLM_PAGE_ID) -> list[Any]:
    return sandbox.facebook.posts(page_id)


# -- posting -------------------------------------------------------------------------------------


def test_a_post_lands_once_with_the_rendered_text_and_link(sandbox, fb_app, adapters) -> None:
    adapter = adapters[BORGHOLM]
    msg = message(fb_app)
    rendered = adapter.prepare(msg)
    receipt = asyncio.run(adapter.send(msg, rendered))

    [post] = posts(sandbox)
    assert receipt == Receipt(
        post.id, {"page_id": BORGHOLM_PAGE_ID, "link": "https://www.borgholm.se/kris"}
    )
    assert re.fullmatch(rf"{BORGHOLM_PAGE_ID}_\d+", receipt.platform_id)
    assert post.message == rendered.text
    assert post.link == "https://www.borgholm.se/kris"
    assert rendered.text == (
        "ÖVNING \N{EN DASH} detta är en övning, inte ett verkligt meddelande.\n\n"  # exercise
        "Servrarna är nedstängda\n\n"
        "Kommunen är utsatt för ett dataintrång. Ring 0485-880 00.\n\n"
        "Borgholms kommun, 0485-880 00"
    )
    [call] = sandbox.records.find("facebook", method="POST")
    assert call.path == f"/graph/v24.0/{BORGHOLM_PAGE_ID}/feed"
    assert call.form["appsecret_proof"]  # checked by the emulator, which accepted it
    assert posts(sandbox, MORBYLANGA_PAGE_ID) == []


def test_preview_reads_the_text_with_its_link(fb_app, adapters) -> None:
    adapter = adapters[BORGHOLM]
    msg = message(fb_app)
    readable = adapter.readable(msg, adapter.prepare(msg))
    assert readable.endswith(
        "Borgholms kommun, 0485-880 00\n\nLink preview: https://www.borgholm.se/kris"
    )


def test_hostile_text_arrives_as_typed(sandbox, fb_app, adapters) -> None:
    title = "<b>Fet</b> &amp; </a> 😀 مرحبا שלום"
    long_tail = "ä" * 5000
    msg = message(fb_app, title=title, body=HOSTILE_BODY + "\n\n" + long_tail)
    send(adapters[BORGHOLM], msg)
    [post] = posts(sandbox)
    assert f"\n\n{title}\n\n" in post.message  # no markup made, none escaped
    assert '<script>alert("body")</script> & <img src=x onerror=alert(1)>' in post.message
    assert "riktig länk (https://www.borgholm.se/?a=1&b=2)" in post.message
    assert long_tail in post.message and "&lt;" not in post.message


def test_the_same_text_again_is_the_post_already_there(sandbox, fb_app, adapters) -> None:
    adapter = adapters[BORGHOLM]
    msg = message(fb_app)
    first = send(adapter, msg)
    again = send(adapter, msg)  # Graph answers 506 (duplicate); the page shows our post
    assert again == first
    assert len(posts(sandbox)) == 1


# -- faults --------------------------------------------------------------------------------------


def test_a_server_error_then_success_posts_once(sandbox, fb_app, adapters) -> None:
    adapter = adapters[BORGHOLM]
    msg = message(fb_app)
    sandbox.faults.fail("facebook", status=503, count=1)
    with pytest.raises(UnknownOutcome, match="checked before any resend"):
        send(adapter, msg)
    assert asyncio.run(adapter.verify(msg)) is None  # nothing arrived: sending again is safe
    receipt = send(adapter, msg)
    assert [p.id for p in posts(sandbox)] == [receipt.platform_id]


def test_a_dropped_answer_is_verified_not_posted_twice(sandbox, fb_app, adapters) -> None:
    adapter = adapters[BORGHOLM]
    msg = message(fb_app)
    sandbox.faults.drop("facebook", target=BORGHOLM_PAGE_ID)
    with pytest.raises(UnknownOutcome, match="dropped"):
        send(adapter, msg)
    [post] = posts(sandbox)  # Graph carried it out; only the answer was lost
    found = asyncio.run(adapter.verify(msg))
    assert found == Receipt(post.id, {"page_id": BORGHOLM_PAGE_ID, "link": post.link})
    assert len(posts(sandbox)) == 1


def test_verify_does_not_take_another_text_for_this_post(sandbox, fb_app, adapters) -> None:
    adapter = adapters[BORGHOLM]
    send(adapter, message(fb_app, title="Läget klockan 10"))
    assert asyncio.run(adapter.verify(message(fb_app, title="Läget klockan 14"))) is None


@pytest.mark.parametrize(
    ("code", "retry_after", "scope", "wait"),
    [
        (32, 120, RateScope.TARGET, 120.0),  # the page's budget: Retry-After honoured
        (80001, None, RateScope.TARGET, 300.0),  # the table's wait when Graph says none
        (4, None, RateScope.CHANNEL, 300.0),  # the app's budget covers every page
        (17, 60, RateScope.CHANNEL, 60.0),
    ],
)
def test_rate_limit_codes_wait_with_their_scope(
    sandbox, fb_app, adapters, code, retry_after, scope, wait
) -> None:
    sandbox.faults.fail(
        "facebook", status=400, code=code, retry_after=retry_after, target=BORGHOLM_PAGE_ID
    )
    with pytest.raises(RateLimited) as caught:
        send(adapters[BORGHOLM], message(fb_app))
    assert (caught.value.scope, caught.value.retry_after) == (scope, wait)
    assert posts(sandbox) == []


def test_a_page_near_its_budget_slows_down_and_the_other_does_not(
    sandbox, fb_app, adapters, monkeypatch
) -> None:
    monkeypatch.setattr(sandbox.facebook, "hourly_call_budget", 2)
    borgholm, morbylanga = adapters[BORGHOLM], adapters[MORBYLANGA]
    send(borgholm, message(fb_app, title="Första"))  # 50 % of the page's budget
    send(borgholm, message(fb_app, title="Andra"))  # 100 %: back in an hour, says the header
    with pytest.raises(RateLimited) as caught:
        send(borgholm, message(fb_app, title="Tredje"))
    assert caught.value.scope == RateScope.TARGET
    assert 3500 < (caught.value.retry_after or 0) <= 3600
    assert "X-Business-Use-Case-Usage".lower() in str(caught.value)
    assert len(posts(sandbox)) == 2  # the third never reached Graph
    send(morbylanga, message(fb_app, MORBYLANGA, title="Första"))
    assert len(posts(sandbox, MORBYLANGA_PAGE_ID)) == 1


def test_the_app_near_its_budget_pauses_the_whole_channel(
    sandbox, fb_app, adapters, monkeypatch
) -> None:
    monkeypatch.setattr(sandbox.facebook, "app_hourly_call_budget", 2)
    send(adapters[MORBYLANGA], message(fb_app, MORBYLANGA, title="Första"))
    send(adapters[BORGHOLM], message(fb_app, title="Andra"))  # the app is at 100 %
    with pytest.raises(RateLimited) as caught:
        send(adapters[BORGHOLM], message(fb_app, title="Tredje"))
    assert (caught.value.scope, caught.value.retry_after) == (
        RateScope.CHANNEL,
        pytest.approx(UNESTIMATED_PAUSE_S, abs=5),
    )


def test_usage_headers_are_read_with_their_estimates() -> None:
    headers = {
        "x-app-usage": '{"call_count": 91, "total_cputime": 10, "total_time": 12}',
        "X-Business-Use-Case-Usage": (
            '{"1": [{"type": "pages", "call_count": 40, "total_cputime": 95,'
            ' "total_time": 3, "estimated_time_to_regain_access": 7}]}'
        ),
        "X-Page-Usage": "not json",
    }
    app, page = read_budgets(headers)
    assert (app.scope, app.percent, app.pause()) == (RateScope.CHANNEL, 91, UNESTIMATED_PAUSE_S)
    assert (page.scope, page.percent, page.pause()) == (RateScope.TARGET, 95, 420)
    assert Budget("x-page-usage", RateScope.TARGET, 90).pause() is None  # above 90, not at


@pytest.mark.parametrize(
    ("reason", "why"),
    [("expired", "has expired"), ("password_changed", "password"), ("invalid", "invalid")],
)
def test_a_dead_page_token_says_which_token_to_renew(
    sandbox, fb_app, adapters, reason, why
) -> None:
    sandbox.facebook.invalidate_token(BORGHOLM_PAGE_ID, reason)
    with pytest.raises(AuthError) as caught:
        send(adapters[BORGHOLM], message(fb_app))
    text = str(caught.value)
    assert f"page token of target {BORGHOLM} (Facebook page {BORGHOLM_PAGE_ID})" in text
    assert why in text and "Renew it" in text and "code 190" in text
    problems = asyncio.run(adapters[BORGHOLM].check_online())
    assert len(problems) == 1 and problems[0].startswith(f"the page token of target {BORGHOLM}")
    assert asyncio.run(adapters[MORBYLANGA].check_online()) == []


def test_a_permission_error_is_permanent_with_the_reason(sandbox, fb_app, adapters) -> None:
    sandbox.faults.fail("facebook", status=403, code=200, target=BORGHOLM_PAGE_ID)
    with pytest.raises(PermanentError, match="pages_manage_posts") as caught:
        send(adapters[BORGHOLM], message(fb_app))
    assert not isinstance(caught.value, AuthError)


# -- corrections ---------------------------------------------------------------------------------


def test_update_edits_and_delete_removes_the_post(sandbox, fb_app, adapters) -> None:
    adapter = adapters[BORGHOLM]
    receipt = send(adapter, message(fb_app))
    correction = message(fb_app, title="Servrarna är åter igång", revision=2)
    rendered = adapter.prepare(correction)
    assert asyncio.run(adapter.update(receipt, correction, rendered)) == receipt
    [post] = posts(sandbox)
    assert post.message == rendered.text and len(post.edits) == 1

    asyncio.run(adapter.delete(receipt))
    assert posts(sandbox) == [] and sandbox.facebook.posts(include_deleted=True)[0].deleted
    asyncio.run(adapter.delete(receipt))  # gone already: nothing to do
    with pytest.raises(PermanentError, match="no longer on page"):
        asyncio.run(adapter.update(receipt, correction, rendered))
    delete_calls = sandbox.records.find("facebook", method="DELETE")
    assert all(call.query.get("appsecret_proof") for call in delete_calls)


def test_a_corrected_link_is_written_into_the_text(sandbox, fb_app, adapters) -> None:
    adapter = adapters[BORGHOLM]
    receipt = send(adapter, message(fb_app))
    correction = message(fb_app, link="https://www.borgholm.se/ratt", revision=2)
    asyncio.run(adapter.update(receipt, correction, adapter.prepare(correction)))
    assert posts(sandbox)[0].message.endswith("\n\nhttps://www.borgholm.se/ratt")


# -- through the queue ---------------------------------------------------------------------------


def dispatched(app: App, *targets: str, title: str = "Vattnet är tillbaka") -> int:
    draft = create_draft(
        app,
        "kommunikator",
        DraftInput(
            title=title,
            body="Kranvattnet går att dricka.",
            to=targets,
            link="https://www.borgholm.se/kris",
        ),
    )
    submit(app, "kommunikator", draft.id)
    approve(app, "anna.hasselbom", draft.id)
    approve(app, "jens.odevall", draft.id)
    dispatch_revision(app, "kommunikator", draft.id)
    return draft.id


def drain(app: App) -> int:
    return asyncio.run(run_worker(app, until_idle=True))


def deliveries(app: App, announcement_id: int) -> dict[str, dict[str, Any]]:
    return {d["target"]: d for d in announcement_status(app, announcement_id)["deliveries"]}


def test_the_queue_posts_to_both_pages_and_verifies_a_lost_answer(sandbox, fb_app, clock) -> None:
    sandbox.faults.drop("facebook", target=BORGHOLM_PAGE_ID)
    announcement_id = dispatched(fb_app, BORGHOLM, MORBYLANGA)
    drain(fb_app)
    state = deliveries(fb_app, announcement_id)
    assert state[MORBYLANGA]["state"] == "sent"
    assert state[BORGHOLM]["state"] == "unknown"  # posted, but the answer was lost
    clock.advance(6)  # the check after an unknown outcome comes 5 s later
    drain(fb_app)
    state = deliveries(fb_app, announcement_id)
    [borgholm_post] = posts(sandbox)
    [morbylanga_post] = posts(sandbox, MORBYLANGA_PAGE_ID)
    assert state[BORGHOLM]["state"] == "sent"
    assert state[BORGHOLM]["platform_id"] == borgholm_post.id
    assert state[MORBYLANGA]["platform_id"] == morbylanga_post.id
    assert announcement_status(fb_app, announcement_id)["state"] == "sent"
    assert len(sandbox.records.find("facebook", method="POST")) == 2  # one per page


def test_the_queue_dead_letters_a_dead_token_naming_the_page(sandbox, fb_app) -> None:
    sandbox.facebook.invalidate_token(MORBYLANGA_PAGE_ID, "expired")
    announcement_id = dispatched(fb_app, BORGHOLM, MORBYLANGA)
    drain(fb_app)
    state = deliveries(fb_app, announcement_id)
    assert state[BORGHOLM]["state"] == "sent"
    assert state[MORBYLANGA]["state"] == "dead"
    assert f"Facebook page {MORBYLANGA_PAGE_ID}" in state[MORBYLANGA]["last_error"]


def test_the_queue_holds_back_only_the_page_near_its_budget(
    sandbox, fb_app, clock, monkeypatch
) -> None:
    # One worker run: the pause a usage header calls for lives in the worker's adapter.
    monkeypatch.setattr(sandbox.facebook, "hourly_call_budget", 2)
    announcements = [
        dispatched(fb_app, BORGHOLM, MORBYLANGA, title="Läget klockan 10"),
        dispatched(fb_app, BORGHOLM, title="Läget klockan 12"),  # Borgholm at 100 %
        dispatched(fb_app, BORGHOLM, MORBYLANGA, title="Läget klockan 14"),
    ]
    drain(fb_app)
    states = [deliveries(fb_app, a) for a in announcements]
    assert [s[MORBYLANGA]["state"] for s in states if MORBYLANGA in s] == ["sent", "sent"]
    borgholm = sorted((s[BORGHOLM] for s in states), key=lambda d: d["state"])
    assert [d["state"] for d in borgholm] == ["retrying", "sent", "sent"]
    waits_until = datetime.fromisoformat(borgholm[0]["next_attempt_at"])
    assert waits_until >= clock() + timedelta(minutes=58)  # the header's estimate: an hour
    assert "X-Business-Use-Case-Usage".lower() in borgholm[0]["last_error"]
    assert len(posts(sandbox)) == 2 and len(posts(sandbox, MORBYLANGA_PAGE_ID)) == 2


def test_the_queue_waits_as_long_as_a_rate_limit_code_says(sandbox, fb_app, clock) -> None:
    sandbox.faults.fail("facebook", status=400, code=32, retry_after=120, target=BORGHOLM_PAGE_ID)
    announcement_id = dispatched(fb_app, BORGHOLM, MORBYLANGA)
    drain(fb_app)
    state = deliveries(fb_app, announcement_id)
    assert state[MORBYLANGA]["state"] == "sent"
    assert state[BORGHOLM]["state"] == "retrying"
    assert state[BORGHOLM]["next_attempt_at"] == (clock() + timedelta(seconds=120)).isoformat(
        timespec="seconds"
    )
    clock.advance(119)
    drain(fb_app)
    assert deliveries(fb_app, announcement_id)[BORGHOLM]["state"] == "retrying"  # not earlier
    clock.advance(1)
    drain(fb_app)
    assert deliveries(fb_app, announcement_id)[BORGHOLM]["state"] == "sent"
    assert len(posts(sandbox)) == 1


class QuickFacebookChannel(FacebookChannel):
    """The adapter with a short HTTP timeout, so a test can wait it out."""

    request_timeout_seconds = 0.5


def test_a_timeout_after_graph_posted_is_verified_not_posted_twice(sandbox, fb_app) -> None:
    target = fb_app.config.target(BORGHOLM)
    assert target is not None
    adapter = QuickFacebookChannel(target, fb_app.channel_context())
    try:
        msg = message(fb_app)
        sandbox.faults.hang("facebook", seconds=5, target=BORGHOLM_PAGE_ID, effect=True)
        with pytest.raises(UnknownOutcome, match="did not answer within the timeout"):
            send(adapter, msg)
        [post] = posts(sandbox)
        assert asyncio.run(adapter.verify(msg)) == Receipt(
            post.id, {"page_id": BORGHOLM_PAGE_ID, "link": post.link}
        )
    finally:
        asyncio.run(adapter.aclose())


def test_check_online_names_the_page_whose_token_died(sandbox, fb_workspace: Path) -> None:
    sandbox.facebook.invalidate_token(BORGHOLM_PAGE_ID, "password_changed")
    cli = Cli(cwd=fb_workspace.parent, env={"BROADCASTER_USER": "kommunikator"})
    result = cli("check", "--online")
    assert result.exit_code == 1, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if f"online {BORGHOLM} " in line]
    assert "the password of the account that owns the token was changed" in line
    assert f"ok   online {MORBYLANGA} (facebook)" in result.stdout


# -- check --online: the token's expiry ------------------------------------------------------------


def with_app_id(app: App, app_id: str) -> FacebookChannel:
    """Borgholm's adapter for a target that names its app (what debug_token needs)."""
    target = app.config.target(BORGHOLM)
    assert target is not None
    channel = app.registry.create(
        target.model_copy(update={"app_id": app_id}), app.channel_context()
    )
    assert isinstance(channel, FacebookChannel)
    return channel


@pytest.mark.parametrize(("days", "problem"), [(None, False), (30, False), (10, True)])
def test_check_online_warns_when_the_page_token_ends_within_two_weeks(
    sandbox, fb_app, clock, days: int | None, problem: bool
) -> None:
    if days is not None:
        ends = clock() + timedelta(days=days)
        sandbox.facebook.expire_token_at(BORGHOLM_PAGE_ID, int(ends.timestamp()))
    channel = with_app_id(fb_app, FACEBOOK_APP_ID)
    try:
        problems = asyncio.run(channel.check_online())
    finally:
        asyncio.run(channel.aclose())
    if not problem:
        assert problems == []
        return
    assert len(problems) == 1
    assert problems[0].startswith(f"the page token expires {ends:%Y-%m-%d}")
    assert f"renew the page token of page {BORGHOLM_PAGE_ID}" in problems[0]


def test_check_online_says_when_the_app_cannot_ask(sandbox, fb_app) -> None:
    channel = with_app_id(fb_app, "444")
    try:
        problems = asyncio.run(channel.check_online())
    finally:
        asyncio.run(channel.aclose())
    assert len(problems) == 1 and "check app_id and app_secret" in problems[0]
