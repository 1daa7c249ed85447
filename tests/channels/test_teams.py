"""Teams channel posts, bot and workflow mode: real msal and httpx against the sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from jsonschema import Draft6Validator

from broadcaster.app import App, open_app
from broadcaster.approval import approve
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.channels.base import Channel, Receipt
from broadcaster.channels.teams_bot import TeamsBotChannel
from broadcaster.channels.teams_workflow import TeamsWorkflowChannel
from broadcaster.dispatch import dispatch_revision
from broadcaster.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    RenderError,
    TransientError,
    UnknownOutcome,
)
from broadcaster.model import RevisionKind, Severity
from broadcaster.rendering.message import Message
from broadcaster.reports import announcement_status
from broadcaster.sandbox import TEAMS_CHANNEL_IDS
from broadcaster.workspace import load_workspace
from tests.conftest import Cli, FakeClock
from tests.factories import make_message
from tests.queue.conftest import work_until

_, BORGHOLM_STAFF = TEAMS_CHANNEL_IDS
T = TypeVar("T")
BOT, WORKFLOW = "teams-borgholm-staff", "teams-morbylanga-staff"

TEAMS_CONFIG = f"""
[teams_bot]
app_id = "env:TEAMS_APP_ID"
app_password = "env:TEAMS_APP_PASSWORD"
tenant_id = "env:TEAMS_TENANT_ID"

[[targets]]
id = "{BOT}"
channel = "teams"
organisation = "borgholm"
mode = "bot"
channel_id = "{BORGHOLM_STAFF}"

[[targets]]
id = "{WORKFLOW}"
channel = "teams"
organisation = "morbylanga"
mode = "workflow"
webhook_url = "env:TEAMS_MORBYLANGA_WORKFLOW_URL"
"""
QUEUE = """
[queue]
retry_base_seconds = 0.05
retry_cap_seconds = 0.5
lease_seconds = 10
"""
HOSTILE = (
    '<b>fet</b> &amp; "citat" \\ </a> {{ 7*7 }} 🚒🔥 '
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u202e\u200f"
)


@pytest.fixture
def teams_dir(workspace_dir: Path) -> Path:
    path = workspace_dir / "broadcaster.toml"
    text = path.read_text(encoding="utf-8").replace("[approval]", QUEUE + "\n[approval]", 1)
    path.write_text(text + TEAMS_CONFIG, encoding="utf-8")
    return workspace_dir


def open_teams_app(teams_dir: Path, sandbox: Any, clock: Any = None, **env: str) -> App:
    environment = {**sandbox.env(), **env}
    workspace = load_workspace(teams_dir / "broadcaster.toml", environment)
    return open_app(workspace, clock=clock) if clock else open_app(workspace)


@pytest.fixture
def teams_app(teams_dir: Path, sandbox: Any, clock: FakeClock) -> Iterator[App]:
    application = open_teams_app(teams_dir, sandbox, clock)
    yield application
    application.close()


def adapter(app: App, target_id: str) -> Channel:
    target = app.config.target(target_id)
    assert target is not None
    return app.registry.create(target, app.channel_context())


def run(channel: Channel, call: Coroutine[Any, Any, T]) -> T:
    """Run one adapter call, then close the adapter's connections (it reopens them on use)."""

    async def main() -> T:
        try:
            return await call
        finally:
            await channel.aclose()

    return asyncio.run(main())


def send(channel: Channel, message: Message) -> Receipt:
    rendered = channel.prepare(message)
    assert rendered.problems == ()
    return run(channel, channel.send(message, rendered))


def card_validator(specs_dir: Path) -> Draft6Validator:
    """The official Adaptive Card 1.5 schema, as published (no help from our own checks)."""
    schema = json.loads((specs_dir / "adaptivecards" / "adaptive-card-1.5.0.json").read_text())
    return Draft6Validator(schema)


def assert_valid_card(card: dict[str, Any], specs_dir: Path) -> None:
    assert card["version"] == "1.5"  # the schema does not require it; Teams does
    assert card["type"] == "AdaptiveCard"
    bare = {key: value for key, value in card.items() if key != "msteams"}
    errors = list(card_validator(specs_dir).iter_errors(bare))
    assert errors == [], errors[0].message if errors else ""


def texts(card: dict[str, Any]) -> list[str]:
    return [e["text"] for e in card["body"] if e["type"] == "TextBlock"]


def title_of(card: dict[str, Any]) -> str:
    [title] = [e["text"] for e in card["body"] if e.get("style") == "heading"]
    return str(title)


def body_of(card: dict[str, Any]) -> str:
    """The text block after the facts: the update's body."""
    kinds = [e["type"] for e in card["body"]]
    return str(card["body"][kinds.index("FactSet") + 1]["text"])


def facts_of(card: dict[str, Any]) -> dict[str, str]:
    return {
        f["title"]: f["value"] for e in card["body"] if e["type"] == "FactSet" for f in e["facts"]
    }


def token_requests(sandbox: Any) -> int:
    return len([r for r in sandbox.records.find("login", method="POST") if "token" in r.path])


# Posting --------------------------------------------------------------------------------------


def test_bot_posts_the_card_as_a_new_thread(teams_app: App, sandbox: Any, full_specs) -> None:
    message = make_message(teams_app, BOT)
    channel = adapter(teams_app, BOT)
    assert isinstance(channel, TeamsBotChannel)
    receipt = send(channel, message)
    [posted] = sandbox.connector.activities(BORGHOLM_STAFF)
    assert receipt.platform_id == posted.id
    assert receipt.data == {
        "service_url": sandbox.env()["BROADCASTER_TEAMS_SERVICE_URL"],
        "conversation_id": posted.conversation_id,
    }
    card = posted.card()
    assert card is not None
    assert title_of(card) == "Vattnet är tillbaka"
    assert body_of(card) == "Dricksvattnet fungerar igen i hela kommunen."
    assert facts_of(card)["Kommun"] == "Borgholms kommun"
    assert posted.activity["summary"] == "Vattnet är tillbaka"
    assert_valid_card(card, full_specs)
    assert sandbox.workflows.posts() == []  # the other mode's target got nothing


def test_workflow_posts_the_same_card_to_the_webhook(
    teams_app: App, sandbox: Any, full_specs
) -> None:
    message = make_message(teams_app, WORKFLOW)
    channel = adapter(teams_app, WORKFLOW)
    assert isinstance(channel, TeamsWorkflowChannel)
    assert not channel.can_update and not channel.can_delete
    receipt = send(channel, message)
    [post] = sandbox.workflows.posts()
    [card] = post.cards()
    assert title_of(card) == "Vattnet är tillbaka"
    assert facts_of(card)["Kommun"] == "Mörbylånga kommun"
    assert receipt.platform_id == f"workflow:{message.idempotency_key}"
    assert "sig" not in json.dumps(receipt.data) and "sig=" not in receipt.platform_id
    assert_valid_card(card, full_specs)
    assert sandbox.connector.activities() == []


def test_bot_edits_and_deletes_its_card(teams_app: App, sandbox: Any) -> None:
    channel = adapter(teams_app, BOT)
    receipt = send(channel, make_message(teams_app, BOT, title="Första"))
    correction = make_message(
        teams_app, BOT, title="Rättad rubrik", revision=2, kind=RevisionKind.CORRECTION
    )
    updated = run(channel, channel.update(receipt, correction, channel.prepare(correction)))
    assert updated == receipt
    [posted] = sandbox.connector.activities(BORGHOLM_STAFF)
    card = posted.card()
    assert card is not None and title_of(card) == "Rättad rubrik"
    assert any("Rättelse" in text for text in texts(card))
    assert [r.method for r in sandbox.records.find("connector")] == ["POST", "PUT"]

    run(channel, channel.delete(receipt))
    assert sandbox.connector.activities(BORGHOLM_STAFF) == []
    run(channel, channel.delete(receipt))  # gone already: still a success


def test_a_receipt_without_its_conversation_is_refused(teams_app: App, sandbox: Any) -> None:
    channel = adapter(teams_app, BOT)
    with pytest.raises(PermanentError, match="no conversation id; edit or delete the card"):
        run(channel, channel.delete(Receipt("1234", {})))
    assert sandbox.records.find("connector") == []


def test_workflow_cannot_edit_or_delete(teams_app: App, sandbox: Any) -> None:
    channel = adapter(teams_app, WORKFLOW)
    message = make_message(teams_app, WORKFLOW)
    receipt = send(channel, message)
    with pytest.raises(PermanentError, match="correction as a new one"):
        run(channel, channel.update(receipt, message, channel.prepare(message)))
    with pytest.raises(PermanentError, match="by hand"):
        run(channel, channel.delete(receipt))


def test_one_token_serves_many_sends(teams_app: App, sandbox: Any) -> None:
    channel = adapter(teams_app, BOT)

    async def three() -> None:
        for title in ("Ett", "Två", "Tre"):
            message = make_message(teams_app, BOT, title=title)
            await channel.send(message, channel.prepare(message))
        await channel.aclose()

    asyncio.run(three())
    assert len(sandbox.connector.activities(BORGHOLM_STAFF)) == 3
    assert token_requests(sandbox) == 1


# Faults ---------------------------------------------------------------------------------------


def test_refused_token_is_renewed_once_then_sent(teams_app: App, sandbox: Any) -> None:
    channel = adapter(teams_app, BOT)
    send(channel, make_message(teams_app, BOT, title="Före"))
    assert token_requests(sandbox) == 1
    sandbox.faults.fail("connector", status=401, count=1)
    send(channel, make_message(teams_app, BOT, title="Efter"))
    assert token_requests(sandbox) == 2  # the cached token was dropped and a new one fetched
    assert len(sandbox.connector.activities(BORGHOLM_STAFF)) == 2
    assert [r.status for r in sandbox.records.find("connector")] == [201, 401, 201]


def test_token_refused_twice_is_an_auth_error(teams_app: App, sandbox: Any) -> None:
    channel = adapter(teams_app, BOT)
    sandbox.faults.fail("connector", status=401, count=2)
    with pytest.raises(AuthError, match=r"refused the token of Teams bot \w{8}… twice: check"):
        send(channel, make_message(teams_app, BOT))
    assert len(sandbox.records.find("connector")) == 2  # renewed once, not in a loop


def test_wrong_password_names_the_bot_and_what_to_renew(teams_dir: Path, sandbox: Any) -> None:
    app = open_teams_app(teams_dir, sandbox, TEAMS_APP_PASSWORD="not-the-secret")
    try:
        channel = adapter(app, BOT)
        app_id = sandbox.env()["TEAMS_APP_ID"]
        with pytest.raises(AuthError) as caught:
            send(channel, make_message(app, BOT))
        reason = str(caught.value)
        assert f"Teams bot {app_id[:8]}" in reason
        assert "new secret" in reason and "app_password" in reason and "AADSTS7000215" in reason
        assert "not-the-secret" not in reason
        assert sandbox.connector.activities() == []
        [line] = run(channel, channel.check_online())
        assert "app_password" in line
    finally:
        app.close()


def test_check_online_gets_a_token(teams_app: App, sandbox: Any) -> None:
    bot = adapter(teams_app, BOT)
    assert run(bot, bot.check_online()) == []
    assert token_requests(sandbox) == 1
    # The webhook cannot be asked anything without posting a card.
    workflow = adapter(teams_app, WORKFLOW)
    assert run(workflow, workflow.check_online()) == []
    assert sandbox.workflows.posts() == []


def test_wrong_tenant_is_an_auth_error(teams_dir: Path, sandbox: Any) -> None:
    app = open_teams_app(teams_dir, sandbox, TEAMS_TENANT_ID="00000000-0000-0000-0000-00000000dead")
    try:
        channel = adapter(app, BOT)
        [line] = run(channel, channel.check_online())
        assert "tenant_id" in line
    finally:
        app.close()


def test_connector_429_says_how_long_to_wait(teams_app: App, sandbox: Any) -> None:
    sandbox.faults.fail("connector", status=429, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        send(adapter(teams_app, BOT), make_message(teams_app, BOT))
    assert caught.value.retry_after == 7
    assert caught.value.scope == "target"


@pytest.mark.parametrize(
    ("status", "error"), [(503, TransientError), (502, UnknownOutcome), (500, UnknownOutcome)]
)
def test_connector_5xx(teams_app: App, sandbox: Any, status: int, error: type) -> None:
    sandbox.faults.fail("connector", status=status)
    with pytest.raises(error):
        send(adapter(teams_app, BOT), make_message(teams_app, BOT))


def test_lost_answer_is_unknown_and_not_resent(teams_app: App, sandbox: Any) -> None:
    channel = adapter(teams_app, BOT)
    assert not channel.can_verify and not channel.blind_resend_ok
    sandbox.faults.drop("connector")
    with pytest.raises(UnknownOutcome):
        send(channel, make_message(teams_app, BOT))
    assert len(sandbox.connector.activities(BORGHOLM_STAFF)) == 1  # it did arrive


def test_bot_blocked_in_channel_is_permanent(teams_app: App, sandbox: Any) -> None:
    sandbox.connector.block(BORGHOLM_STAFF)
    with pytest.raises(PermanentError, match="blocked in channel"):
        send(adapter(teams_app, BOT), make_message(teams_app, BOT))


def test_workflow_errors_never_show_the_url(teams_app: App, sandbox: Any) -> None:
    url = sandbox.env()["TEAMS_MORBYLANGA_WORKFLOW_URL"]
    signature = url.split("sig=")[1]
    channel = adapter(teams_app, WORKFLOW)
    failures: list[Exception] = []
    for fault in (
        lambda: sandbox.faults.fail("workflows", status=502),
        lambda: sandbox.faults.fail("workflows", status=429, retry_after=3),
        lambda: sandbox.faults.drop("workflows"),
    ):
        fault()
        with pytest.raises((TransientError, UnknownOutcome)) as caught:
            send(channel, make_message(teams_app, WORKFLOW))
        failures.append(caught.value)
    assert isinstance(failures[0], UnknownOutcome)
    assert isinstance(failures[1], RateLimited) and failures[1].retry_after == 3
    assert isinstance(failures[2], UnknownOutcome)
    for failure in failures:
        assert signature not in str(failure) and "workflows/" not in str(failure)


def test_workflow_with_a_bad_signature_is_an_auth_error(teams_dir: Path, sandbox: Any) -> None:
    good = sandbox.env()["TEAMS_MORBYLANGA_WORKFLOW_URL"]
    forged = good.split("sig=")[0] + "sig=AAAA" + "B" * 40
    app = open_teams_app(teams_dir, sandbox, TEAMS_MORBYLANGA_WORKFLOW_URL=forged)
    try:
        with pytest.raises(AuthError, match="signature was refused") as caught:
            send(adapter(app, WORKFLOW), make_message(app, WORKFLOW))
        assert "B" * 40 not in str(caught.value)
    finally:
        app.close()


def test_workflow_url_must_come_from_the_environment(teams_dir: Path, sandbox: Any) -> None:
    from broadcaster.errors import ConfigError

    path = teams_dir / "broadcaster.toml"
    text = path.read_text(encoding="utf-8")
    literal = sandbox.env()["TEAMS_MORBYLANGA_WORKFLOW_URL"]
    path.write_text(text.replace("env:TEAMS_MORBYLANGA_WORKFLOW_URL", literal), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_workspace(path, sandbox.env())
    assert "env:NAME" in str(caught.value)
    assert literal.split("sig=")[1] not in str(caught.value)


# Content --------------------------------------------------------------------------------------


def test_hostile_text_arrives_exactly_as_written(teams_app: App, sandbox: Any, full_specs) -> None:
    title = HOSTILE
    body = HOSTILE + "\n\n" + "Lång text. " * 450  # about 5,000 characters
    for target in (BOT, WORKFLOW):
        send(adapter(teams_app, target), make_message(teams_app, target, title=title, body=body))
    [posted] = sandbox.connector.activities(BORGHOLM_STAFF)
    [post] = sandbox.workflows.posts()
    for card in (posted.card(), post.cards()[0]):
        assert card is not None
        assert title_of(card) == title  # not escaped twice, not interpreted
        # The body is Markdown, where &amp; is how one writes "&" (as on the website).
        assert body_of(card).startswith(HOSTILE.replace("&amp;", "&"))
        assert len(body_of(card)) > 5000
        assert_valid_card(card, full_specs)


@pytest.mark.parametrize("severity", list(Severity))
@pytest.mark.parametrize("kind", list(RevisionKind))
def test_every_card_validates(
    teams_app: App, severity: Severity, kind: RevisionKind, full_specs
) -> None:
    channel = adapter(teams_app, BOT)
    message = make_message(teams_app, BOT, severity=severity, kind=kind, title=HOSTILE)
    rendered = channel.prepare(message)
    assert rendered.problems == ()
    assert rendered.card is not None
    assert_valid_card(rendered.card, full_specs)


def test_exercise_card_carries_the_banner(teams_dir: Path, sandbox: Any, full_specs) -> None:
    app = open_teams_app(teams_dir, sandbox, BROADCASTER_EXERCISE="1")
    try:
        assert app.config.broadcaster.exercise
        rendered = adapter(app, BOT).prepare(make_message(app, BOT))
        assert rendered.card is not None
        assert "ÖVNING" in texts(rendered.card)[0]
        assert_valid_card(rendered.card, full_specs)
    finally:
        app.close()


def test_readable_shows_title_facts_body_and_link(teams_app: App) -> None:
    channel = adapter(teams_app, BOT)
    plain = make_message(teams_app, BOT)
    message = replace(plain, content=replace(plain.content, link="https://www.borgholm.se/vatten"))
    text = channel.readable(message, channel.prepare(message))
    assert "Vattnet är tillbaka" in text
    assert "Kommun: Borgholms kommun" in text
    assert "Telefon: 0485-880 00" in text
    assert "Dricksvattnet fungerar igen" in text
    assert "Läs mer: https://www.borgholm.se/vatten" in text
    assert "{" not in text  # no JSON


def test_template_override_is_checked_against_the_schema(
    teams_app: App, teams_dir: Path, full_specs
) -> None:
    override = teams_dir / "templates" / "teams" / "card.json"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(
        '{"type": "AdaptiveCard", "version": "1.5", "body": ['
        '{"type": "TextBlock", "text": {{ announcement.title|tojson }}, "size": "Huge"}]}',
        encoding="utf-8",
    )
    fresh = open_app(teams_app.workspace, clock=teams_app.clock)
    try:
        channel = adapter(fresh, BOT)
        rendered = channel.prepare(make_message(fresh, BOT))
        assert rendered.problems == (
            "the card is not a valid Adaptive Card: body/0/size: 'Huge' is not one of "
            "['default', 'small', 'medium', 'large', 'extraLarge']",
        )
        override.write_text('{"type": "AdaptiveCard", "version": "1.6", "body": []}')
        rendered = adapter(fresh, BOT).prepare(make_message(fresh, BOT))
        assert rendered.problems == ("card version 1.6 is above 1.5, the highest Teams renders",)
        # Text pasted in without |tojson breaks the JSON as soon as it holds a quote.
        override.write_text('{"type": "AdaptiveCard", "text": "{{ announcement.title }}"}')
        with pytest.raises(RenderError, match=r"did not produce JSON.*\|tojson"):
            adapter(fresh, BOT).prepare(make_message(fresh, BOT, title='Säg "hej"'))
    finally:
        fresh.close()


# Through the queue ----------------------------------------------------------------------------


def test_dispatch_reaches_both_teams_channels_once(teams_dir: Path, sandbox: Any) -> None:
    app = open_teams_app(teams_dir, sandbox)
    try:
        # The connector answers the first post with 429 and Retry-After: 1.
        sandbox.faults.fail("connector", status=429, retry_after=1, count=1)
        draft = create_draft(
            app, "kommunikator", DraftInput(title="Läget kl 16", body="Text", to=(BOT, WORKFLOW))
        )
        submit(app, "kommunikator", draft.id)
        approve(app, "anna.hasselbom", draft.id)
        approve(app, "jens.odevall", draft.id)
        dispatch_revision(app, "kommunikator", draft.id)

        def sent() -> bool:
            deliveries = announcement_status(app, draft.id)["deliveries"]
            return all(d["state"] == "sent" for d in deliveries)

        work_until(app, sent)
        deliveries = {d["target"]: d for d in announcement_status(app, draft.id)["deliveries"]}
        [posted] = sandbox.connector.activities(BORGHOLM_STAFF)
        [post] = sandbox.workflows.posts()
        assert deliveries[BOT]["platform_id"] == posted.id
        assert deliveries[WORKFLOW]["platform_id"].startswith("workflow:")
        card = posted.card()
        assert card is not None and title_of(card) == "Läget kl 16"
        assert title_of(post.cards()[0]) == "Läget kl 16"
        first, second = [r.at for r in sandbox.records.find("connector", method="POST")]
        assert second - first >= 1.0  # waited as told, never earlier
    finally:
        app.close()


def test_bot_targets_are_given_the_bot(teams_app: App) -> None:
    target = teams_app.config.target(BOT)
    assert target is not None
    assert getattr(target, "bot", None) is teams_app.config.teams_bot


# As the officer types it ----------------------------------------------------------------------


def teams_cli(teams_dir: Path, sandbox: Any) -> Cli:
    return Cli(cwd=teams_dir, env={**sandbox.env(), "BROADCASTER_USER": "kommunikator"})


def test_cli_preview_send_and_status(teams_dir: Path, sandbox: Any) -> None:
    cli = teams_cli(teams_dir, sandbox)
    to = ["--to", BOT, "--to", WORKFLOW]
    drafted = cli("draft", "-t", "Läget <b>kl 16</b>", "-b", "Koka vattnet.", *to)
    assert drafted.exit_code == 0, drafted.stderr
    preview = cli("preview", "1")
    assert preview.exit_code == 0, preview.stderr
    assert "Läget <b>kl 16</b>" in preview.stdout
    assert "Kommun: Borgholms kommun" in preview.stdout
    assert "Kommun: Mörbylånga kommun" in preview.stdout
    assert "sig=" not in preview.stdout  # the webhook URL is a secret
    for args in (
        ["submit", "1"],
        ["approve", "1", "--as", "anna.hasselbom"],
        ["approve", "1", "--as", "jens.odevall"],
        ["send", "1"],
        ["worker", "--until-idle"],
    ):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
    status = cli("status", "1", "--json")
    assert status.exit_code == 0, status.stderr
    deliveries = {d["target"]: d for d in status.json()["deliveries"]}
    [posted] = sandbox.connector.activities(BORGHOLM_STAFF)
    assert deliveries[BOT]["state"] == "sent" and deliveries[BOT]["platform_id"] == posted.id
    assert deliveries[WORKFLOW]["state"] == "sent"
    assert len(sandbox.workflows.posts()) == 1
    assert "sig=" not in status.stdout


def test_cli_preview_refuses_an_invalid_card_override(teams_dir: Path, sandbox: Any) -> None:
    override = teams_dir / "templates" / "teams" / "card.json"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(
        '{"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Marquee", "text": "x"}]}',
        encoding="utf-8",
    )
    cli = teams_cli(teams_dir, sandbox)
    assert cli("draft", "-t", "Läget", "-b", "Text", "--to", BOT).exit_code == 0
    preview = cli("preview", "1")
    assert preview.exit_code == 2
    assert "'Marquee' is not an element of Adaptive Card 1.5" in preview.stdout + preview.stderr
