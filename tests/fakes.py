"""A scripted channel adapter for testing the queue and delivery logic without a platform.

Tests of real channels use the sandbox emulators over HTTP; this fake is only for the core's
own decisions (what to do with each kind of outcome).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import ClassVar

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
            return script.found if message.target.id in script.holds else None

    ScriptedChannel.can_verify = can_verify
    ScriptedChannel.blind_resend_ok = blind_ok
    registry = ChannelRegistry()
    registry.register_class("website", ScriptedChannel)
    return registry
