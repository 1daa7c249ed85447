"""The explicit registry of channel adapters, keyed by channel and mode.

A channel with several ways of posting (Teams: ``bot`` or ``workflow``; website: ``static`` or
``webhook``) has one adapter per mode, registered under ``(channel, mode)``; an adapter
registered without a mode serves every mode of its channel. Adapters are registered by import
path and imported on first use, so that the CLI starts without loading every platform SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from broadcaster.errors import InputError

if TYPE_CHECKING:
    # Only for annotations: importing the adapter base would load Jinja2 and markdown for every
    # command that opens the application, including ``list`` and ``status``.
    from broadcaster.channels.base import Channel, ChannelContext
    from broadcaster.config import TargetConfig

__all__ = ["ChannelRegistry", "default_registry", "target_mode"]

_Key = tuple[str, str | None]


def target_mode(target: TargetConfig) -> str | None:
    """The mode a target posts in (None for channels that have only one way)."""
    mode = getattr(target, "mode", None)
    return str(mode) if mode is not None else None


class ChannelRegistry:
    """Maps (channel, mode) to adapter classes (given as ``module:Class``, or as classes)."""

    def __init__(self) -> None:
        self._paths: dict[_Key, str | type[Channel]] = {}

    def register(self, name: str, path: str, mode: str | None = None) -> None:
        """Add an adapter; a second adapter for the same key is an error, not a silent swap."""
        self._add((name, mode), path)

    def register_class(self, name: str, adapter: type[Channel], mode: str | None = None) -> None:
        """Add an adapter class that is already imported (tests, third-party code)."""
        self._add((name, mode), adapter)

    def _add(self, key: _Key, adapter: str | type[Channel]) -> None:
        if key in self._paths:
            raise ValueError(f"{_label(key)} is already registered ({self._paths[key]})")
        self._paths[key] = adapter

    def names(self) -> list[str]:
        """The registered channels, as ``channel`` or ``channel:mode``."""
        return sorted(_label(key) for key in self._paths)

    def adapter_class(self, name: str, mode: str | None = None) -> type[Channel]:
        """The adapter class for a channel (and mode), imported now."""
        key: _Key = (name, mode) if (name, mode) in self._paths else (name, None)
        try:
            path = self._paths[key]
        except KeyError:
            raise InputError(
                f"{_label((name, mode))} has no adapter in this version of broadcaster "
                f"(available: {', '.join(self.names())})"
            ) from None
        if isinstance(path, type):
            adapter = path
        else:
            module_name, class_name = path.split(":")
            adapter = getattr(importlib.import_module(module_name), class_name)
        if adapter.name != name or (key[1] is not None and adapter.mode != key[1]):
            raise ValueError(
                f"{path} says it is {_label((adapter.name, adapter.mode))}, "
                f"registered as {_label(key)}"
            )
        return adapter

    def adapter_for(self, target: TargetConfig) -> type[Channel]:
        """The adapter class for one target's channel and mode."""
        return self.adapter_class(str(target.channel), target_mode(target))

    def create(self, target: TargetConfig, context: ChannelContext) -> Channel:
        """Build the adapter for one target."""
        return self.adapter_for(target)(target, context)


def _label(key: _Key) -> str:
    name, mode = key
    return f"channel {name!r}" if mode is None else f"channel {name!r} in mode {mode!r}"


def default_registry() -> ChannelRegistry:
    """A registry holding every adapter that ships with broadcaster."""
    registry = ChannelRegistry()
    registry.register("facebook", "broadcaster.channels.facebook:FacebookChannel")
    registry.register("website", "broadcaster.channels.website:WebsiteChannel", mode="static")
    registry.register(
        "website", "broadcaster.channels.cms_webhook:WebsiteWebhookChannel", mode="webhook"
    )
    registry.register("teams", "broadcaster.channels.teams_bot:TeamsBotChannel", mode="bot")
    registry.register(
        "teams", "broadcaster.channels.teams_workflow:TeamsWorkflowChannel", mode="workflow"
    )
    registry.register("telegram", "broadcaster.channels.telegram:TelegramChannel")
    registry.register("sms", "broadcaster.channels.sms:SmsChannel")
    return registry
