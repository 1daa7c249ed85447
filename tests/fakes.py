"""A scripted channel adapter for testing the queue and delivery logic without a platform.

Tests of real channels use the sandbox emulators over HTTP; this fake is only for the core's
own decisions (what to do with each kind of outcome).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from broadcaster.app import App
from broadcaster.channels.base import Channel, ChannelContext, Receipt, Rendered
from broadcaster.channels.registry import ChannelRegistry
from broadcaster.config import TargetConfig
from broadcaster.rendering.message import Message

Step = Receipt | BaseException


@dataclass
class Script:
    """What each target answers, in order; and what was asked of it."""

    steps: dict[str, list[Step]] = field(default_factory=lambda: defaultdict(list))
    sent: list[tuple[str, str, int]] = field(default_factory=list)
    verified: list[tuple[str, str, int]] = field(default_factory=list)
    #: targets whose platform already holds the delivery (what verify answers)
    holds: set[str] = field(default_factory=set)
    #: what verify answers for a target it holds
    found: Receipt = field(default_factory=lambda: Receipt("found-by-verify"))
    #: every message handed to send and to verify, in order
    send_messages: list[Message] = field(default_factory=list)
    verify_messages: list[Message] = field(default_factory=list)
    #: errors verify raises first, per target, in order (the platform could not be asked)
    verify_errors: dict[str, list[BaseException]] = field(default_factory=lambda: defaultdict(list))

    def answer(self, target: str, *steps: Step) -> None:
        self.steps[target].extend(steps)


def scripted_registry(
    script: Script, *, can_verify: bool = True, blind_ok: bool = False
) -> ChannelRegistry:
    """A registry whose 'website' adapter follows ``script``."""

    class ScriptedChannel(Channel):
        name: ClassVar[str] = "website"
        max_attempts = 5
        max_age_seconds = 3600

        def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
            super().__init__(target, context)

        def render(self, message: Message) -> Rendered:
            return Rendered(text=f"{message.content.title}: {message.content.body}")

        async def send(self, message: Message, rendered: Rendered) -> Receipt:
            script.sent.append((message.target.id, message.uid, message.revision))
            script.send_messages.append(message)
            queue = script.steps[message.target.id]
            step = queue.pop(0) if queue else Receipt(f"post-{len(script.sent)}")
            if isinstance(step, BaseException):
                raise step
            script.holds.add(message.target.id)
            return step

        async def verify(self, message: Message) -> Receipt | None:
            script.verified.append((message.target.id, message.uid, message.revision))
            script.verify_messages.append(message)
            failures = script.verify_errors[message.target.id]
            if failures:
                raise failures.pop(0)
            return script.found if message.target.id in script.holds else None

    ScriptedChannel.can_verify = can_verify
    ScriptedChannel.blind_resend_ok = blind_ok
    registry = ChannelRegistry()
    registry.register_class("website", ScriptedChannel)
    return registry


def use_registry(monkeypatch: pytest.MonkeyPatch, registry: ChannelRegistry) -> None:
    """Make every App the CLI opens in this test use ``registry`` (adapters it cannot reach)."""
    import broadcaster.app

    real_open_app = broadcaster.app.open_app

    def open_app(*args: Any, **kwargs: Any) -> App:
        app = real_open_app(*args, **kwargs)
        app.registry = registry
        return app

    monkeypatch.setattr(broadcaster.app, "open_app", open_app)


def website_and(*extra: type[Channel]) -> ChannelRegistry:
    """The real website adapter plus ``extra`` adapters (fakes of platforms with accounts)."""
    registry = ChannelRegistry()
    registry.register("website", "broadcaster.channels.website:WebsiteChannel", mode="static")
    for adapter in extra:
        registry.register_class(adapter.name, adapter, mode=adapter.mode)
    return registry


TELEGRAM_TARGET = """
[[targets]]
id = "telegram-oland"
channel = "telegram"
organisation = "borgholm"
chat_id = "@olandkris"
bot_token = "env:TELEGRAM_BOT_TOKEN"
"""


def add_telegram_target(workspace_dir: Path) -> None:
    """Add the reference configuration's Telegram channel (and its token) to a workspace."""
    config = workspace_dir / "broadcaster.toml"
    config.write_text(config.read_text(encoding="utf-8") + TELEGRAM_TARGET, encoding="utf-8")
    with (workspace_dir / ".env").open("a", encoding="utf-8") as env:
        env.write("\nTELEGRAM_BOT_TOKEN=123456:fake-token-for-tests\n")
