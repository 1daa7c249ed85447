"""`broadcaster check --online`: one line per target, all asked at once, none allowed to hang."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

import pytest

from broadcaster.channels.base import Channel, Receipt, Rendered
from broadcaster.errors import AuthError
from broadcaster.rendering.message import Message
from tests.conftest import Cli
from tests.fakes import TELEGRAM_TARGET, add_telegram_target, use_registry, website_and

EXPIRED = "the bot token of telegram-oland was revoked; create a new one with @BotFather"


def telegram_fake(check: object) -> type[Channel]:
    """A Telegram adapter whose check_online is ``check`` (an async function of the target)."""

    class FakeTelegram(Channel):
        name: ClassVar[str] = "telegram"

        def render(self, message: Message) -> Rendered:
            return Rendered(text=message.content.title)

        async def send(self, message: Message, rendered: Rendered) -> Receipt:
            raise AssertionError("check never sends")

        async def check_online(self) -> list[str]:
            return await check(self.target.id)  # type: ignore[operator,no-any-return]

    return FakeTelegram


def test_website_targets_are_ok_online(cli: Cli) -> None:
    result = cli("check", "--online")
    assert result.exit_code == 0, result.stdout + result.stderr
    online = [line for line in result.stdout.splitlines() if "online" in line]
    assert online == [
        "ok   online web-borgholm (website): the platform accepts its credentials",
        "ok   online web-morbylanga (website): the platform accepts its credentials",
    ]
    document = cli("check", "--online", "--json").json()
    assert document["online"] == [
        {"target": "web-borgholm", "channel": "website", "ok": True, "problems": []},
        {"target": "web-morbylanga", "channel": "website", "ok": True, "problems": []},
    ]
    assert "online" not in cli("check", "--json").json()  # offline unless asked


def test_a_refused_target_is_one_line_with_its_fix_and_exit_1(
    cli: Cli, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def revoked(target: str) -> list[str]:
        return [EXPIRED]

    add_telegram_target(workspace_dir)
    use_registry(monkeypatch, website_and(telegram_fake(revoked)))
    result = cli("check", "--online")
    assert result.exit_code == 1
    assert f"fail online telegram-oland (telegram): {EXPIRED}" in result.stdout
    assert "ok   online web-borgholm (website)" in result.stdout
    document = cli("check", "--online", "--json").json()
    assert document["error"]["code"] == "check_online_failed"
    assert document["error"]["details"] == [f"telegram-oland: {EXPIRED}"]
    telegram = [t for t in document["online"] if t["target"] == "telegram-oland"]
    assert telegram == [
        {"target": "telegram-oland", "channel": "telegram", "ok": False, "problems": [EXPIRED]}
    ]


def test_an_adapter_error_and_a_missing_adapter_are_problems_not_crashes(
    cli: Cli, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused(target: str) -> list[str]:
        raise AuthError("telegram", "401 Unauthorized: renew TELEGRAM_BOT_TOKEN")

    add_telegram_target(workspace_dir)
    use_registry(monkeypatch, website_and(telegram_fake(refused)))
    result = cli("check", "--online")
    assert result.exit_code == 1
    assert "fail online telegram-oland (telegram): 401 Unauthorized: renew" in result.stdout
    use_registry(monkeypatch, website_and())
    result = cli("check", "--online")
    assert result.exit_code == 2  # the workspace itself is wrong: the offline check says so too
    assert "fail online telegram-oland (telegram): channel 'telegram' has no adapter" in (
        result.stdout.replace("\n", " ")
    )


def test_targets_are_asked_at_once_and_a_hung_one_times_out_alone(
    cli: Cli, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """telegram-oland answers only once telegram-hung was asked: asked one after the other,
    it would wait for nothing and time out itself."""
    hung_was_asked: list[asyncio.Event] = []  # made inside the command's event loop

    async def check(target: str) -> list[str]:
        if not hung_was_asked:
            hung_was_asked.append(asyncio.Event())
        if target == "telegram-hung":
            hung_was_asked[0].set()
            await asyncio.Event().wait()  # a platform that never answers
        await hung_was_asked[0].wait()
        return []

    add_telegram_target(workspace_dir)
    config = workspace_dir / "broadcaster.toml"
    hung = TELEGRAM_TARGET.replace("telegram-oland", "telegram-hung")
    config.write_text(config.read_text(encoding="utf-8") + hung, encoding="utf-8")
    use_registry(monkeypatch, website_and(telegram_fake(check)))
    result = cli("check", "--online", "--timeout", "0.5", "--json")
    assert result.exit_code == 1
    by_target = {t["target"]: t for t in result.json()["online"]}
    assert by_target["telegram-oland"]["ok"] is True
    assert by_target["web-borgholm"]["ok"] is True
    problems = by_target["telegram-hung"]["problems"]
    assert len(problems) == 1 and "no answer from telegram within 0.5 s" in problems[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--online", "--timeout", "0"), "--timeout"),
        (("--online", "--timeout", "soon"), "--timeout"),
    ],
)
def test_bad_timeouts_are_usage_errors(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli("check", *args)
    assert result.exit_code == 2
    assert message in result.stdout + result.stderr
    assert "online web-borgholm" not in result.stdout  # nothing was checked


def test_the_timeout_default_is_the_checks_own() -> None:
    from broadcaster.checks import DEFAULT_ONLINE_TIMEOUT
    from tests.cli.test_help import commands

    [option] = [p for p in commands()["check"].params if p.name == "timeout"]
    assert option.default == DEFAULT_ONLINE_TIMEOUT
