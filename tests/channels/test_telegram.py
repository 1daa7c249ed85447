"""The Telegram channel against the sandbox's Bot API, with the real PTB over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from broadcaster.app import App, open_app
from broadcaster.approval import approve
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.channels.telegram import TelegramChannel
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    RateScope,
    TransientError,
    UnknownOutcome,
)
from broadcaster.model import Receipt
from broadcaster.rendering.message import Message
from broadcaster.reports import announcement_status
from broadcaster.sandbox import TELEGRAM_CHAT, Sandbox
from broadcaster.store.deliveries import deliveries_for
from broadcaster.worker_runtime import run_worker
from broadcaster.workspace import load_workspace
from tests import factories
from tests.conftest import Cli, FakeClock
from tests.factories import make_message

T = TypeVar("T")
TARGET = "telegram-oland"
CHAT_ID = -1001885084001
HOSTILE_TITLE = "<b>inte fet</b> &amp; </a> 🚨"
HOSTILE_BODY = (
    "Vatten & avlopp: <i>koka</i> vattnet </a>&lt;\n\n"
    "بيان رسمي من البلدية — הודעה רשמית\n\n"
    "Mer på https://www.borgholm.se/?a=1&b=2"
)


def telegram_toml(**settings: Any) -> str:
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    return (
        "\n[[targets]]\n"
        f'id = "{TARGET}"\n'
        'channel = "telegram"\n'
        'organisation = "borgholm"\n'
        f'chat_id = "{TELEGRAM_CHAT}"\n'
        'bot_token = "env:TELEGRAM_BOT_TOKEN"\n' + extra
    )


@pytest.fixture(autouse=True)
def _unclosed_sockets_fail_their_own_test() -> Iterator[None]:
    # A client socket the adapter leaves open warns when it is collected; collecting here makes
    # the warning (an error in this suite) land on the test that leaked it, not a later one.
    yield
    gc.collect()


@pytest.fixture
def make_app(
    workspace_dir: Path, sandbox: Sandbox, clock: FakeClock
) -> Iterator[Callable[..., App]]:
    """An App whose workspace has the Telegram target, pointed at the sandbox by its .env."""
    opened: list[App] = []

    def make(**settings: Any) -> App:
        config = workspace_dir / "broadcaster.toml"
        config.write_text(config.read_text(encoding="utf-8") + telegram_toml(**settings))
        env = "".join(f"{name}={value}\n" for name, value in sandbox.env().items())
        (workspace_dir / ".env").write_text(env, encoding="utf-8")
        app = open_app(load_workspace(config, {}), clock=clock)
        opened.append(app)
        return app

    yield make
    for app in opened:
        app.close()


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return make_app()


def adapter_of(app: App) -> TelegramChannel:
    return factories.adapter_of(app, TARGET, TelegramChannel)


run = factories.run_adapter


def dispatched(app: App, title: str = "Läget i kommunen", body: str = "Text") -> int:
    draft = create_draft(app, "kommunikator", DraftInput(title=title, body=body, to=(TARGET,)))
    submit(app, "kommunikator", draft.id)
    approve(app, "anna.hasselbom", draft.id)
    approve(app, "jens.odevall", draft.id)
    dispatch_revision(app, "kommunikator", draft.id)
    return draft.id


def drain(app: App) -> None:
    asyncio.run(run_worker(app, until_idle=True))


def delivery(app: App, announcement_id: int) -> dict[str, Any]:
    (found,) = announcement_status(app, announcement_id)["deliveries"]
    return dict(found)


def posts(sandbox: Sandbox) -> list[Any]:
    return sandbox.telegram.messages(TELEGRAM_CHAT)


def sends(sandbox: Sandbox) -> int:
    return sum(r.path.endswith("/sendMessage") for r in sandbox.records.find("telegram"))


def with_link(message: Message, link: str) -> Message:
    return dataclasses.replace(message, content=dataclasses.replace(message.content, link=link))


def entity_text(text: str, entity: dict[str, Any]) -> str:
    """The text an entity covers (offsets count UTF-16 code units, as Telegram does)."""
    units = text.encode("utf-16-le")
    start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
    return units[start:end].decode("utf-16-le")


# -- posting ----------------------------------------------------------------------------------


def test_post_lands_once_with_title_bold_and_link(app: App, sandbox: Sandbox) -> None:
    adapter = adapter_of(app)
    message = with_link(
        make_message(app, TARGET, body="Vattnet är tillbaka."), "https://www.borgholm.se/kris"
    )
    rendered = adapter.prepare(message)
    assert rendered.problems == ()
    receipt = run(adapter, lambda a: a.send(message, rendered))

    (post,) = posts(sandbox)
    assert receipt == Receipt("1", {"chat_id": CHAT_ID, "message_id": 1})
    assert post.parse_mode == "HTML"
    covered = {(e["type"], entity_text(post.text, e), e.get("url")) for e in post.entities}
    assert ("bold", "Viktigt: Vattnet är tillbaka", None) in covered
    assert ("text_link", "Mer information", "https://www.borgholm.se/kris") in covered
    assert "Vattnet är tillbaka." in post.text
    # What preview shows is what arrived, the link written out, and the length Telegram counts.
    shown = adapter.readable(message, rendered)
    assert shown.startswith(post.text)
    assert "[Mer information: https://www.borgholm.se/kris]" in shown
    assert shown.endswith(f"({len(post.text)} of 4096 characters)")
    (request,) = [r for r in sandbox.records.find("telegram") if r.path.endswith("/sendMessage")]
    assert request.form is not None
    assert json.loads(request.form["link_preview_options"][-1]) == {"is_disabled": True}


def test_hostile_text_arrives_as_text_and_the_entities_are_ours(app: App, sandbox: Sandbox) -> None:
    adapter = adapter_of(app)
    message = make_message(app, TARGET, title=HOSTILE_TITLE, body=HOSTILE_BODY)
    rendered = adapter.prepare(message)
    assert rendered.problems == ()
    run(adapter, lambda a: a.send(message, rendered))

    (post,) = posts(sandbox)
    # Every character the officer typed is text: no tag of theirs became formatting.
    assert f"Viktigt: {HOSTILE_TITLE}" in post.text
    # (The body is light markdown, where "&lt;" is how one writes "<".)
    assert "Vatten & avlopp: <i>koka</i> vattnet </a><" in post.text
    assert "بيان رسمي من البلدية — הודעה רשמית" in post.text
    entities = [(e["type"], entity_text(post.text, e)) for e in post.entities]
    assert ("bold", f"Viktigt: {HOSTILE_TITLE}") in entities
    assert {kind for kind, _ in entities} <= {"bold", "italic"}  # the template's own only
    assert adapter.readable(message, rendered).startswith(post.text)


def test_the_limit_is_counted_on_the_text_telegram_shows(app: App, sandbox: Sandbox) -> None:
    adapter = adapter_of(app)
    # 3,900 ampersands are 19,500 characters of HTML but 3,900 characters on screen: allowed.
    escaped = make_message(app, TARGET, body="&" * 3900)
    assert adapter.prepare(escaped).problems == ()
    # 5,000 letters are not, and preview says by how much.
    long = adapter.prepare(make_message(app, TARGET, body="a" * 5000))
    (problem,) = long.problems
    assert "Telegram allows 4096" in problem
    assert "shorten the body by" in problem
    # An emoji is two of Telegram's characters.
    emoji = adapter.prepare(make_message(app, TARGET, body="🚨" * 2030))
    assert emoji.problems and "Telegram allows 4096" in emoji.problems[0]


def test_preview_refuses_5000_characters_with_the_reason(
    make_app: Callable[..., App], workspace_dir: Path, sandbox: Sandbox
) -> None:
    make_app()
    cli = Cli(cwd=workspace_dir, env={"BROADCASTER_USER": "kommunikator"})
    (workspace_dir / "long.md").write_text("x" * 5000, encoding="utf-8")
    draft = cli("draft", "--title", "Lång", "--body-file", "long.md", "--to", TARGET, "--json")
    assert draft.exit_code == 0, draft.stderr
    shown = cli("preview", str(draft.json()["id"]), "--json")
    (target,) = shown.json()["targets"]
    assert target["target"] == TARGET
    assert any("Telegram allows 4096" in error for error in target["errors"])
    assert posts(sandbox) == []


def test_a_broken_template_override_is_found_by_preview(app: App, workspace_dir: Path) -> None:
    override = workspace_dir / "templates" / "telegram" / "message.html"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text("<p>{{ announcement.title }}</p> <b>open", encoding="utf-8")
    problems = adapter_of(app).prepare(make_message(app, TARGET)).problems
    assert any("<p>" in p for p in problems)
    assert any("<b> is never closed" in p for p in problems)


# -- through the queue ------------------------------------------------------------------------


def test_end_to_end_through_the_queue(app: App, sandbox: Sandbox) -> None:
    announcement_id = dispatched(app, title="Dataintrång", body="Kommunens servrar är avstängda.")
    drain(app)
    found = delivery(app, announcement_id)
    assert (found["state"], found["platform_id"], found["attempts"]) == ("sent", "1", 1)
    assert announcement_status(app, announcement_id)["state"] == "sent"
    (post,) = posts(sandbox)
    assert "Dataintrång" in post.text
    assert "Kommunens servrar är avstängda." in post.text
    drain(app)  # nothing left to do: still one post
    assert sends(sandbox) == 1
    # The stored receipt is everything a later correction needs to edit or delete the post.
    with app.store.read() as conn:
        (stored,) = deliveries_for(conn, announcement_id)
    assert stored.receipt == Receipt("1", {"chat_id": CHAT_ID, "message_id": 1})
    run(adapter_of(app), lambda a: a.delete(stored.receipt or Receipt("")))
    assert posts(sandbox) == []


def test_flood_control_waits_exactly_as_told_without_warnings(
    app: App, sandbox: Sandbox, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PTB warns about its deprecated int retry_after unless the process opts in; we must not
    # depend on that (warnings are errors in this suite).
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    sandbox.faults.fail("telegram", status=429, retry_after=7, target=TELEGRAM_CHAT)
    announcement_id = dispatched(app)
    drain(app)
    found = delivery(app, announcement_id)
    assert found["state"] == "retrying"
    assert "retry in 7 s" in found["last_error"]
    assert found["next_attempt_at"] == (clock() + timedelta(seconds=7)).isoformat(
        timespec="seconds"
    )
    clock.advance(6)
    drain(app)
    assert (delivery(app, announcement_id)["state"], posts(sandbox)) == ("retrying", [])
    clock.advance(1)
    drain(app)
    assert delivery(app, announcement_id)["state"] == "sent"
    assert len(posts(sandbox)) == 1


def test_flood_control_is_rate_limited_for_this_chat(app: App, sandbox: Sandbox) -> None:
    sandbox.faults.fail("telegram", status=429, retry_after=3)
    adapter = adapter_of(app)
    message = make_message(app, TARGET)
    with pytest.raises(RateLimited) as caught:
        run(adapter, lambda a: a.send(message, a.prepare(message)))
    assert (caught.value.retry_after, caught.value.scope) == (3.0, RateScope.TARGET)


def test_a_server_error_is_retried_and_posted_once(
    app: App, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.faults.fail("telegram", status=503, target=TELEGRAM_CHAT)
    announcement_id = dispatched(app)
    drain(app)
    assert delivery(app, announcement_id)["state"] == "retrying"
    clock.advance(60)
    drain(app)
    assert delivery(app, announcement_id)["state"] == "sent"
    assert len(posts(sandbox)) == 1


def test_a_bot_removed_from_the_channel_is_dead_with_the_fix(app: App, sandbox: Sandbox) -> None:
    sandbox.telegram.remove_bot(TELEGRAM_CHAT)
    announcement_id = dispatched(app)
    drain(app)
    found = delivery(app, announcement_id)
    assert (found["state"], found["attempts"]) == ("dead", 1)
    assert "bot is not a member of the channel chat" in found["last_error"]
    assert "add it to the channel as an administrator" in found["last_error"]
    assert announcement_status(app, announcement_id)["state"] == "partially_failed"


def test_a_refused_token_is_an_auth_error_naming_botfather(
    make_app: Callable[..., App], sandbox: Sandbox, workspace_dir: Path
) -> None:
    app = make_app()
    target = app.config.target(TARGET)
    assert target is not None
    wrong = target.model_copy(update={"bot_token": SecretStr("123456:AAwrong")})
    adapter = TelegramChannel(wrong, app.channel_context())
    message = make_message(app, TARGET)
    with pytest.raises(AuthError, match="@BotFather"):
        run(adapter, lambda a: a.send(message, a.prepare(message)))
    assert sends(sandbox) == 0


@pytest.mark.parametrize("fault", ["hang", "drop"])
def test_an_answer_lost_after_telegram_posted_is_not_posted_again(
    make_app: Callable[..., App],
    workspace_dir: Path,
    sandbox: Sandbox,
    clock: FakeClock,
    fault: str,
) -> None:
    app = make_app(timeout_seconds=0.5)
    if fault == "hang":  # Telegram posts, then answers after our read timeout (TimedOut)
        sandbox.faults.hang("telegram", seconds=2, effect=True, target=TELEGRAM_CHAT)
    else:  # Telegram posts, then the connection drops without an answer
        sandbox.faults.drop("telegram", target=TELEGRAM_CHAT)
    announcement_id = dispatched(app)
    drain(app)
    found = delivery(app, announcement_id)
    assert found["state"] == "unknown"
    assert "may have posted it in @olandkris" in found["last_error"]
    for _ in range(3):
        clock.advance(120)
        drain(app)
    assert sends(sandbox) == 1  # never a second, blind attempt
    assert len(posts(sandbox)) == 1
    found = delivery(app, announcement_id)
    assert found["state"] == "dead"
    assert "may have been posted" in found["last_error"]
    assert "broadcaster deadletters --retry" in found["last_error"]
    # `deadletters` lists it with the id the command needs.
    cli = Cli(cwd=workspace_dir, env={"BROADCASTER_USER": "kommunikator"})
    (letter,) = cli("deadletters", "--json").json()["deadletters"]
    assert (letter["id"], letter["target"]) == (found["id"], TARGET)
    assert "may have been posted" in letter["last_error"]


def test_a_timeout_is_an_unknown_outcome(make_app: Callable[..., App], sandbox: Sandbox) -> None:
    app = make_app(timeout_seconds=0.3)
    sandbox.faults.hang("telegram", seconds=1, effect=True, target=TELEGRAM_CHAT)
    adapter = adapter_of(app)
    message = make_message(app, TARGET)
    with pytest.raises(UnknownOutcome, match="deadletters --retry"):
        run(adapter, lambda a: a.send(message, a.prepare(message)))


def test_a_gateway_error_on_a_send_is_an_unknown_outcome(app: App, sandbox: Sandbox) -> None:
    # A 502 comes from a proxy in front of the Bot API, which may have passed the post on.
    sandbox.faults.fail("telegram", status=502, target=TELEGRAM_CHAT)
    adapter = adapter_of(app)
    message = make_message(app, TARGET)
    with pytest.raises(UnknownOutcome, match="may have posted it"):
        run(adapter, lambda a: a.send(message, a.prepare(message)))


def test_telegram_out_of_reach_before_sending_is_retried(
    app: App, sandbox: Sandbox, workspace_dir: Path
) -> None:
    # Nothing listens on the address: the connection is refused before anything is sent.
    context = dataclasses.replace(
        app.channel_context(), endpoints={"BROADCASTER_TELEGRAM_API_URL": "http://127.0.0.1:9"}
    )
    target = app.config.target(TARGET)
    assert target is not None
    message = make_message(app, TARGET)
    with pytest.raises(TransientError, match="cannot reach Telegram") as caught:
        run(TelegramChannel(target, context), lambda a: a.send(message, a.prepare(message)))
    assert not isinstance(caught.value, RateLimited)


# -- corrections --------------------------------------------------------------------------------


def test_edit_and_delete(app: App, sandbox: Sandbox) -> None:
    adapter = adapter_of(app)
    first = make_message(app, TARGET, title="Vattnet är tillbaka")
    fixed = make_message(app, TARGET, title="Vattnet är tillbaka i Borgholm", revision=2)

    async def flow(a: TelegramChannel) -> tuple[Receipt, Receipt, Receipt]:
        sent = await a.send(first, a.prepare(first))
        edited = await a.update(sent, fixed, a.prepare(fixed))
        again = await a.update(sent, fixed, a.prepare(fixed))  # "message is not modified"
        return sent, edited, again

    sent, edited, again = run(adapter, flow)
    assert sent == edited == again
    (post,) = posts(sandbox)
    assert "Vattnet är tillbaka i Borgholm" in post.text
    assert post.edit_date is not None

    async def remove(a: TelegramChannel) -> None:
        await a.delete(sent)
        await a.delete(sent)  # already gone is success
        # A receipt with only the message id (older rows) finds the target's own chat.
        await a.delete(Receipt(sent.platform_id))

    run(adapter_of(app), remove)
    assert posts(sandbox) == []

    with pytest.raises(PermanentError, match="send the correction as a new one"):
        run(adapter_of(app), lambda a: a.update(sent, first, a.prepare(first)))


# -- check --online ---------------------------------------------------------------------------


def test_check_online_is_quiet_when_the_bot_may_post(app: App) -> None:
    assert run(adapter_of(app), lambda a: a.check_online()) == []


def test_check_online_says_what_to_grant(app: App, sandbox: Sandbox) -> None:
    sandbox.telegram.restrict_bot(TELEGRAM_CHAT)
    (line,) = run(adapter_of(app), lambda a: a.check_online())
    assert "may not post in @olandkris" in line
    assert "'Post messages'" in line
    sandbox.telegram.remove_bot(TELEGRAM_CHAT)
    (line,) = run(adapter_of(app), lambda a: a.check_online())
    assert "is not an administrator of @olandkris (it is left)" in line


def test_check_online_names_a_refused_token(app: App) -> None:
    target = app.config.target(TARGET)
    assert target is not None
    wrong = target.model_copy(update={"bot_token": SecretStr("123456:AAwrong")})
    (line,) = run(TelegramChannel(wrong, app.channel_context()), lambda a: a.check_online())
    assert "@BotFather" in line


def test_check_online_from_the_command_line(
    make_app: Callable[..., App], workspace_dir: Path, sandbox: Sandbox
) -> None:
    make_app()
    cli = Cli(cwd=workspace_dir, env={"BROADCASTER_USER": "kommunikator"})
    assert cli("check", "--online").exit_code == 0
    sandbox.telegram.restrict_bot(TELEGRAM_CHAT)
    refused = cli("check", "--online")
    assert refused.exit_code == 1
    assert TARGET in refused.stdout + refused.stderr
    assert "'Post messages'" in refused.stdout + refused.stderr
