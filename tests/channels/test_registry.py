"""The adapter registry: one adapter per (channel, mode), imported only when asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from broadcaster.channels.base import Channel, Receipt, Rendered
from broadcaster.channels.registry import ChannelRegistry, default_registry
from broadcaster.config import Config
from broadcaster.errors import InputError
from broadcaster.rendering.message import Message
from broadcaster.workspace import load_workspace
from tests.test_config import REFERENCE_SECRETS


@pytest.fixture
def example_config(shared_dir: Path, tmp_path: Path) -> Config:
    """The reference configuration: every channel, Teams in both modes."""
    path = tmp_path / "broadcaster.toml"
    path.write_bytes((shared_dir / "examples" / "broadcaster.toml").read_bytes())
    return load_workspace(path, REFERENCE_SECRETS).config


def adapter(channel: str, its_mode: str | None) -> type[Channel]:
    class Adapter(Channel):
        name: ClassVar[str] = channel
        mode: ClassVar[str | None] = its_mode

        def render(self, message: Message) -> Rendered:
            return Rendered(text="")

        async def send(self, message: Message, rendered: Rendered) -> Receipt:
            return Receipt("x")

    return Adapter


def test_each_mode_of_a_channel_has_its_own_adapter(example_config: Config) -> None:
    bot, workflow = adapter("teams", "bot"), adapter("teams", "workflow")
    registry = ChannelRegistry()
    registry.register_class("teams", bot, mode="bot")
    registry.register_class("teams", workflow, mode="workflow")
    by_mode = {
        getattr(t, "mode", None): registry.adapter_for(t)
        for t in example_config.targets
        if t.channel == "teams"
    }
    assert by_mode == {"bot": bot, "workflow": workflow}
    assert registry.names() == [
        "channel 'teams' in mode 'bot'",
        "channel 'teams' in mode 'workflow'",
    ]


def test_an_adapter_without_a_mode_serves_every_mode_of_its_channel() -> None:
    any_site = adapter("website", None)
    registry = ChannelRegistry()
    registry.register_class("website", any_site)
    assert registry.adapter_class("website", "webhook") is any_site
    assert registry.adapter_class("website", "static") is any_site


def test_a_mode_without_an_adapter_is_a_clear_error() -> None:
    registry = ChannelRegistry()
    registry.register_class("website", adapter("website", "static"), mode="static")
    with pytest.raises(InputError, match="channel 'website' in mode 'webhook' has no adapter"):
        registry.adapter_class("website", "webhook")


def test_both_website_modes_ship(example_config: Config) -> None:
    registry = default_registry()
    modes = {
        getattr(t, "mode", None): registry.adapter_for(t).__name__
        for t in example_config.targets
        if t.channel == "website"
    }
    assert modes == {"static": "WebsiteChannel", "webhook": "WebsiteWebhookChannel"}


def test_a_second_adapter_for_the_same_channel_and_mode_is_refused() -> None:
    registry = ChannelRegistry()
    registry.register_class("teams", adapter("teams", "bot"), mode="bot")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_class("teams", adapter("teams", "bot"), mode="bot")


def test_an_adapter_registered_under_another_mode_is_caught() -> None:
    registry = ChannelRegistry()
    registry.register_class("teams", adapter("teams", "workflow"), mode="bot")
    with pytest.raises(ValueError, match="says it is channel 'teams' in mode 'workflow'"):
        registry.adapter_class("teams", "bot")


def test_adapters_are_imported_on_first_use() -> None:
    # In a fresh interpreter: unloading a module here would leave two WebsiteChannel classes.
    program = (
        "import sys\n"
        "from broadcaster.channels.registry import default_registry\n"
        "registry = default_registry()\n"
        "assert 'broadcaster.channels.website' not in sys.modules\n"
        "assert registry.adapter_class('website', 'static').mode == 'static'\n"
        "assert 'broadcaster.channels.website' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True)
